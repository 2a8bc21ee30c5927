"""A JSON body read strictly into hubspot-api-client's own models.

HubSpot's OpenAPI documents (HubSpot/HubSpot-public-api-spec-collection) say
"proprietary ... not licensed for external use", so they are not copied here.
The client's models are generated from those documents by OpenAPI Generator
and ship under Apache-2.0 (``hubspot-api-client``, pinned in constraints.txt):
each names its JSON keys (``attribute_map``), their types (``openapi_types``),
its required fields and enumerations (its setters, with client-side validation
on). This reader refuses what the client itself lets through: a key the model
does not have, a value of another JSON type (a number where a string is
declared), a missing required field, a value outside an enumeration.
"""

from __future__ import annotations

import importlib
import re
from datetime import datetime
from types import ModuleType
from typing import Any


class Invalid(ValueError):
    """The body does not fit the model; the message says where."""


_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(?\[?str, (.+?)\]?\)?$")
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (object,),
}


def read(models: ModuleType, name: str, data: Any, where: str = "body") -> Any:
    """``data`` as the model ``name`` of ``models`` (e.g. ``hubspot.crm.contacts.models``)."""
    if name in _PRIMITIVES:
        if name in ("int", "float") and isinstance(data, bool):
            raise Invalid(f"{where}: a {name} is expected, not a boolean")
        if not isinstance(data, _PRIMITIVES[name]):
            raise Invalid(f"{where}: a {name} is expected, not {type(data).__name__}")
        return data
    if name in ("datetime", "date"):
        if not isinstance(data, str):
            raise Invalid(f"{where}: an ISO 8601 {name} string is expected")
        try:
            return datetime.fromisoformat(data.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(f"{where}: {data!r} is not an ISO 8601 {name}") from None
    if match := _LIST.match(name):
        if not isinstance(data, list):
            raise Invalid(f"{where}: a list is expected")
        return [read(models, match.group(1), v, f"{where}[{i}]") for i, v in enumerate(data)]
    if match := _DICT.match(name):
        if not isinstance(data, dict):
            raise Invalid(f"{where}: an object is expected")
        return {k: read(models, match.group(1), v, f"{where}.{k}") for k, v in data.items()}
    model = getattr(models, name, None)
    if model is None:
        raise Invalid(f"{where}: no model {name} in {models.__name__}")
    if not isinstance(data, dict):
        raise Invalid(f"{where}: a {name} object is expected")
    keys = {json_key: attr for attr, json_key in model.attribute_map.items()}
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise Invalid(f"{where}: {name} has no field {', '.join(unknown)}")
    values = {
        keys[k]: read(models, model.openapi_types[keys[k]], v, f"{where}.{k}")
        for k, v in data.items()
        if v is not None
    }
    try:
        return model(**values, local_vars_configuration=_validating(models))
    except (ValueError, TypeError) as exc:  # a required field missing, a value not allowed
        raise Invalid(f"{where}: {name}: {exc}") from None


def _validating(models: ModuleType) -> Any:
    """The package's configuration with the generated client-side validation on (the client's
    default is off): required fields and enumerations are checked by the models' setters."""
    package = importlib.import_module(models.__name__.rsplit(".", 1)[0] + ".configuration")
    configuration = package.Configuration()
    configuration.client_side_validation = True
    return configuration


def dump(value: Any) -> Any:
    """A model (or a list or dict of them) as HubSpot's JSON."""
    if hasattr(value, "to_dict"):
        out = {}
        for attr, key in value.attribute_map.items():
            v = getattr(value, attr)
            if v is not None:
                out[key] = dump(v)
        return out
    if isinstance(value, list):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
