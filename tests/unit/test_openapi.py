"""The query API's OpenAPI document: valid OpenAPI 3.1, every body a model's schema.

The live check (schemathesis against the running API) is
``tests/integration/test_api_live.py``; these need no server.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import ValidationError

from schemas.api import RESPONSE_MODELS, Lead, StageCounts, TopLeads
from schemas.base import ID_PATTERN
from schemas.transitions import STAGES
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.serve.api.openapi import OPENAPI, REF, _without_id_pattern
from tests.factories import VP_PROFILE, ev
from tests.unit.test_asyncapi import refs

SCHEMAS = OPENAPI["components"]["schemas"]


def resolve(ref: str) -> Any:
    node: Any = OPENAPI
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def operations() -> list[tuple[str, dict[str, Any]]]:
    return [(f"GET {path}", item["get"]) for path, item in OPENAPI["paths"].items()]


def test_it_is_valid_openapi_3_1() -> None:
    OpenAPIV31SpecValidator(OPENAPI).validate()  # raises with the first error
    assert OPENAPI["openapi"] == "3.1.0"


def test_every_reference_resolves() -> None:
    for ref in refs(OPENAPI):
        assert ref.startswith("#/components/schemas/"), ref
        assert isinstance(resolve(ref), dict), ref


def test_every_success_has_a_real_schema() -> None:
    """A 2xx JSON body refers to a closed object schema; /metrics says it is Prometheus text."""
    for name, op in operations():
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert ok, f"{name} documents no success"
        for response in ok.values():
            for media, content in response["content"].items():
                schema = content["schema"]
                if media == "text/plain":
                    assert name == "GET /metrics" and schema["type"] == "string"
                    continue
                assert media == "application/json", name
                target = resolve(schema["$ref"])
                assert target["type"] == "object", name
                assert target["properties"] and target["required"], name
                assert target["additionalProperties"] is False, name


def test_every_error_is_the_error_body() -> None:
    for name, op in operations():
        for code, response in op["responses"].items():
            if code[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": REF.format(model="Error")}, (name, code)
        if op.get("security") != []:
            assert "401" in op["responses"], name
        if op["parameters"]:
            assert "400" in op["responses"], name


def test_the_components_are_the_models_own_schemas() -> None:
    for model in RESPONSE_MODELS:
        own = model.model_json_schema(mode="serialization", ref_template=REF)
        own.pop("$defs", None)
        # but the id alphabet's pattern (see _without_id_pattern)
        assert SCHEMAS[model.__name__] == _without_id_pattern(own), model.__name__
    assert ID_PATTERN not in json.dumps(SCHEMAS)


def test_stage_counts_name_every_stage_in_order() -> None:
    assert tuple(StageCounts.model_fields) == STAGES


def _lead_body(rules: Rules) -> dict[str, Any]:
    """A lead as the projection stores it: its newest update's JSON plus its transitions."""
    replay = Replay(rules)
    transitions = []
    update = None
    for event in [
        ev("profile_update", lead_id="L1", campaign="q4", **VP_PROFILE),
        ev("page_view", hours=1, lead_id="L1", path="/pricing"),
    ]:
        step = replay.process(event)
        update = step.update or update
        transitions += step.transitions
    assert update is not None and transitions
    return {
        **update.model_dump(mode="json"),
        "recent_transitions": [t.model_dump(mode="json") for t in transitions],
    }


def validate(instance: Any, model: str) -> None:
    schema = {"$ref": REF.format(model=model), "components": OPENAPI["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_a_body_and_its_document_agree_and_both_refuse_drift(rules: Rules) -> None:
    body = _lead_body(rules)
    dumped = Lead.model_validate(body).model_dump(mode="json")
    assert dumped == body  # what the projection holds is what the API answers
    validate(dumped, "Lead")
    with pytest.raises(ValidationError):
        Lead.model_validate({**body, "new_field": 1})
    with pytest.raises(jsonschema.ValidationError):
        validate({**body, "new_field": 1}, "Lead")
    with pytest.raises(jsonschema.ValidationError):
        validate({k: v for k, v in body.items() if k != "sla"}, "Lead")  # every key, always


def test_a_leaderboard_row_is_typed() -> None:
    row = {"lead_id": "L1", "total": 65.0, "stage": "mql", "account_id": None}
    validate(TopLeads(stage=None, leads=[row]).model_dump(mode="json"), "TopLeads")
    with pytest.raises(ValidationError):
        TopLeads.model_validate({"stage": None, "leads": [{**row, "stage": "hot"}]})
    with pytest.raises(jsonschema.ValidationError):
        validate({"stage": None, "leads": [{**row, "total": "65"}]}, "TopLeads")
