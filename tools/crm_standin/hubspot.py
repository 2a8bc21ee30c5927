"""A HubSpot stand-in: the CRM endpoints Leadstream calls, every request read strictly into
hubspot-api-client's own models (``strict``) and every answer too, before it is sent.

    GET  /crm/v3/objects/contacts                       a page (crm-sync's readiness)
    POST /crm/v3/objects/contacts/batch/upsert          <= 100 inputs, by a unique property
    POST /crm/v3/objects/contacts/batch/read            by id or a unique property
    POST /crm/v3/objects/contacts/batch/update          by record id
    GET  /crm/v3/properties/contacts[/groups]           POST .../groups, .../batch/create
    POST /crm/v4/associations/deals/contacts/batch/read a deal's contacts (collect's webhooks)

What HubSpot documents and this stand-in does too: a bearer token; at most 100
inputs a batch; an unknown property or an ``idProperty`` without unique values
is a 400 VALIDATION_ERROR for the whole batch, in HubSpot's error shape; an
invalid ``email`` too; the lifecycle stage moves forward only (an earlier value
is ignored, silently; ``""`` clears it). Every write is kept in ``writes``
with the ``leadstream_version`` it carried; ``regressions`` counts writes of a
version lower than the contact held. ``faults`` injects 429/500/timeouts.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from hubspot.crm.associations.v4 import models as association_models
from hubspot.crm.contacts import models as contact_models
from hubspot.crm.properties import models as property_models

from tools.crm_standin.faults import FAULTS, Faults, faults_route
from tools.crm_standin.serving import Serving
from tools.crm_standin.strict import Invalid, read

BATCH_LIMIT = 100
LIFECYCLE = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Contact properties every HubSpot account has (the few that matter here).
BUILT_IN = {
    "email": ("string", "text", True),
    "firstname": ("string", "text", False),
    "lastname": ("string", "text", False),
    "lifecyclestage": ("enumeration", "radio", False),
    "hs_lead_status": ("enumeration", "radio", False),
    "hs_object_id": ("number", "number", True),
}
LEAD_STATUS = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Write:
    """One contact's write as the stand-in took it."""

    contact_id: str
    properties: dict[str, str]
    version: int | None
    at: str


@dataclass
class HubSpotStandIn(Serving):
    token: str = "standin-token"
    host: str = "127.0.0.1"
    port: int = 0
    faults: Faults = field(default_factory=Faults)
    contacts: dict[str, dict[str, str]] = field(default_factory=dict)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    deal_contacts: dict[str, list[str]] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    regressions: list[tuple[str, int, int]] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    refusals: list[str] = field(default_factory=list)  # what validation refused, why

    def __post_init__(self) -> None:
        self._ids = itertools.count(1001)
        self._runner: web.AppRunner | None = None
        self.groups.setdefault("contactinformation", "Contact information")
        for name, (kind, field_type, unique) in BUILT_IN.items():
            self.properties.setdefault(name, self._property(name, kind, field_type, unique))

    # --- what a test reads ---------------------------------------------------------

    def contact_by(self, prop: str, value: str) -> dict[str, str] | None:
        for props in self.contacts.values():
            if props.get(prop) == value:
                return props
        return None

    def held(self) -> dict[str, dict[str, str]]:
        """Contact id -> its properties (what ``crm-standin`` prints)."""
        return self.contacts

    def add_contact(self, **props: str) -> str:
        cid = str(next(self._ids))
        self.contacts[cid] = {"hs_object_id": cid, **props}
        return cid

    # --- serving -------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app[FAULTS] = self.faults
        r = app.router
        r.add_get("/crm/v3/objects/contacts", self.page)
        r.add_post("/crm/v3/objects/contacts/batch/upsert", self.upsert)
        r.add_post("/crm/v3/objects/contacts/batch/read", self.batch_read)
        r.add_post("/crm/v3/objects/contacts/batch/update", self.batch_update)
        r.add_get("/crm/v3/properties/contacts", self.list_properties)
        r.add_get("/crm/v3/properties/contacts/groups", self.list_groups)
        r.add_post("/crm/v3/properties/contacts/groups", self.create_group)
        r.add_post("/crm/v3/properties/contacts/batch/create", self.create_properties)
        r.add_post("/crm/v4/associations/deals/contacts/batch/read", self.deal_associations)
        r.add_post("/__standin/faults", faults_route)
        r.add_get("/__standin/state", self.state)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/__standin"):
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return self._answer(
                    request,
                    self._error(
                        401, "INVALID_AUTHENTICATION", "Authentication credentials not found."
                    ),
                )
            fault = await self.faults.next(
                request, {"status": "error", "correlationId": str(uuid.uuid4())}
            )
            if fault is not None:
                self.requests.append((request.method, request.path, fault.status))
                return fault
        try:
            response = await handler(request)
        except Invalid as exc:
            self.refusals.append(f"{request.path}: {exc}")
            response = self._error(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {exc}")
        return self._answer(request, response)

    def _answer(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        self.requests.append((request.method, request.path, response.status))
        return response

    @staticmethod
    def _error(status: int, category: str, message: str, **more: Any) -> web.Response:
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **more,
        }
        return web.json_response(body, status=status)

    async def _body(self, request: web.Request, models: Any, name: str) -> Any:
        try:
            data = json.loads(await request.read())
        except ValueError:
            raise Invalid("the body is not JSON") from None
        return read(models, name, data)

    @staticmethod
    def _reply(models: Any, name: str, body: dict[str, Any], status: int = 200) -> web.Response:
        read(models, name, body, where="answer")  # the stand-in's own answers fit the models too
        return web.json_response(body, status=status)

    # --- contacts ------------------------------------------------------------------

    def _object(
        self, cid: str, wanted: list[str] | None = None, new: bool | None = None
    ) -> dict[str, Any]:
        props = self.contacts[cid]
        shown = props if wanted is None else {k: props.get(k) for k in {*wanted, "hs_object_id"}}
        out: dict[str, Any] = {
            "id": cid,
            "properties": {k: v for k, v in shown.items() if v is not None},
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": _now(),
            "archived": False,
        }
        if new is not None:
            out["new"] = new
        return out

    def _check_properties(self, props: dict[str, str]) -> web.Response | None:
        problems = []
        for name, value in props.items():
            if name not in self.properties:
                problems.append(
                    {
                        "isValid": False,
                        "message": f'Property "{name}" does not exist',
                        "error": "PROPERTY_DOESNT_EXIST",
                        "name": name,
                    }
                )
            elif name == "email" and value and not _EMAIL.match(value):
                problems.append(
                    {
                        "isValid": False,
                        "message": f"Email address {value} is invalid",
                        "error": "INVALID_EMAIL",
                        "name": name,
                    }
                )
            elif (name == "lifecyclestage" and value not in ("", *LIFECYCLE)) or (
                name == "hs_lead_status" and value not in ("", *LEAD_STATUS)
            ):
                problems.append(
                    {
                        "isValid": False,
                        "message": f"{value} was not one of the allowed options",
                        "error": "INVALID_OPTION",
                        "name": name,
                    }
                )
            elif self.properties[name]["type"] == "number" and value and not _is_number(value):
                problems.append(
                    {
                        "isValid": False,
                        "message": f"{value} is not a valid number",
                        "error": "INVALID_LONG",
                        "name": name,
                    }
                )
        if not problems:
            return None
        return self._error(
            400, "VALIDATION_ERROR", f"Property values were not valid: {json.dumps(problems)}"
        )

    def _apply(self, cid: str, props: dict[str, str]) -> None:
        held = self.contacts[cid]
        version = props.get("leadstream_version")
        if (
            version
            and held.get("leadstream_version")
            and int(version) < int(held["leadstream_version"])
        ):
            self.regressions.append((cid, int(held["leadstream_version"]), int(version)))
        for name, value in props.items():
            if name == "lifecyclestage" and _backward(held.get("lifecyclestage"), value):
                continue  # forward only: HubSpot keeps the later stage, silently
            if value == "":
                held.pop(name, None)
            else:
                held[name] = value
        self.writes.append(Write(cid, dict(props), int(version) if version else None, _now()))

    def _find(self, prop: str, value: str) -> str | None:
        if prop == "hs_object_id":
            return value if value in self.contacts else None
        for cid, props in self.contacts.items():
            if props.get(prop) == value:
                return cid
        return None

    def _unique(self, prop: str) -> web.Response | None:
        if prop not in self.properties:
            return self._error(400, "VALIDATION_ERROR", f'Property "{prop}" does not exist')
        if not self.properties[prop].get("hasUniqueValue"):
            return self._error(
                400,
                "VALIDATION_ERROR",
                f"{prop} is not a unique property; upsert needs a property with unique values",
            )
        return None

    async def page(self, request: web.Request) -> web.Response:
        models = contact_models
        limit = int(request.query.get("limit", "10"))
        results = [self._object(cid) for cid in list(self.contacts)[:limit]]
        return self._reply(
            models,
            "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging",
            {"results": results},
        )

    async def upsert(self, request: web.Request) -> web.Response:
        models = contact_models
        body = await self._body(request, models, "BatchInputSimplePublicObjectBatchInputUpsert")
        if len(body.inputs) > BATCH_LIMIT:
            return self._error(
                400,
                "VALIDATION_ERROR",
                f"Batch input size must be less than or equal to {BATCH_LIMIT}",
            )
        ids = [(i.id_property or "hs_object_id", i.id) for i in body.inputs]
        if len(set(ids)) != len(ids):
            return self._error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        for prop, _ in ids:
            if (problem := self._unique(prop)) is not None:
                return problem
        for given in body.inputs:
            problem = self._check_properties(
                {**given.properties, given.id_property or "hs_object_id": given.id}
            )
            if problem is not None:
                return problem
        results = []
        for given in body.inputs:
            prop = given.id_property or "hs_object_id"
            cid = self._find(prop, given.id)
            new = cid is None
            if cid is None:
                cid = str(next(self._ids))
                self.contacts[cid] = {"hs_object_id": cid, prop: given.id}
            self._apply(cid, given.properties)
            results.append(self._object(cid, new=new))
        now = _now()
        answer = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        return self._reply(models, "BatchResponseSimplePublicUpsertObject", answer)

    async def batch_read(self, request: web.Request) -> web.Response:
        models = contact_models
        body = await self._body(request, models, "BatchReadInputSimplePublicObjectId")
        prop = body.id_property or "hs_object_id"
        if prop != "hs_object_id" and (problem := self._unique(prop)) is not None:
            return problem
        found, missing = [], []
        for given in body.inputs:
            cid = self._find(prop, given.id)
            if cid is None:
                missing.append(given.id)
            else:
                found.append(self._object(cid, [*(body.properties or []), prop]))
        now = _now()
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": found,
            "startedAt": now,
            "completedAt": now,
        }
        if missing:
            answer |= {
                "numErrors": 1,
                "errors": [
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": (
                            "Could not get some CONTACT objects, they may be deleted or not "
                            "exist. Check that ids are valid."
                        ),
                        "context": {"ids": missing},
                        "links": {},
                        "errors": [],
                    }
                ],
            }
            return self._reply(
                models, "BatchResponseSimplePublicObjectWithErrors", answer, status=207
            )
        return self._reply(models, "BatchResponseSimplePublicObject", answer)

    async def batch_update(self, request: web.Request) -> web.Response:
        models = contact_models
        body = await self._body(request, models, "BatchInputSimplePublicObjectBatchInput")
        if len(body.inputs) > BATCH_LIMIT:
            return self._error(
                400,
                "VALIDATION_ERROR",
                f"Batch input size must be less than or equal to {BATCH_LIMIT}",
            )
        for given in body.inputs:
            if given.id not in self.contacts:
                return self._error(404, "OBJECT_NOT_FOUND", f"Contact {given.id} not found")
            if (problem := self._check_properties(given.properties)) is not None:
                return problem
        for given in body.inputs:
            self._apply(given.id, given.properties)
        now = _now()
        results = [self._object(g.id) for g in body.inputs]
        return self._reply(
            models,
            "BatchResponseSimplePublicObject",
            {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now},
        )

    # --- properties ----------------------------------------------------------------

    def _property(
        self,
        name: str,
        kind: str,
        field_type: str,
        unique: bool,
        group: str = "contactinformation",
        label: str | None = None,
    ) -> dict[str, Any]:
        return {
            "name": name,
            "label": label or name,
            "type": kind,
            "fieldType": field_type,
            "groupName": group,
            "description": "",
            "options": [],
            "hasUniqueValue": unique,
            "formField": False,
            "hidden": False,
            "calculated": False,
            "externalOptions": False,
            "displayOrder": -1,
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
            "archived": False,
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": False,
                "readOnlyValue": False,
            },
        }

    async def list_properties(self, request: web.Request) -> web.Response:
        models = property_models
        return self._reply(
            models,
            "CollectionResponsePropertyNoPaging",
            {"results": list(self.properties.values())},
        )

    async def list_groups(self, request: web.Request) -> web.Response:
        models = property_models
        results = [
            {"name": n, "label": label, "displayOrder": -1, "archived": False}
            for n, label in self.groups.items()
        ]
        return self._reply(models, "CollectionResponsePropertyGroupNoPaging", {"results": results})

    async def create_group(self, request: web.Request) -> web.Response:
        models = property_models
        body = await self._body(request, models, "PropertyGroupCreate")
        if body.name in self.groups:
            return self._error(
                409, "CONFLICT", f"A property group named '{body.name}' already exists."
            )
        self.groups[body.name] = body.label
        return self._reply(
            models,
            "PropertyGroup",
            {
                "name": body.name,
                "label": body.label,
                "displayOrder": body.display_order or -1,
                "archived": False,
            },
            status=201,
        )

    async def create_properties(self, request: web.Request) -> web.Response:
        models = property_models
        body = await self._body(request, models, "BatchInputPropertyCreate")
        for given in body.inputs:
            if given.group_name not in self.groups:
                return self._error(
                    400, "VALIDATION_ERROR", f"property group {given.group_name} does not exist"
                )
            if given.name in self.properties:
                return self._error(409, "CONFLICT", f"Property {given.name} already exists")
        made = []
        for given in body.inputs:
            prop = self._property(
                given.name,
                given.type,
                given.field_type,
                bool(given.has_unique_value),
                given.group_name,
                given.label,
            )
            self.properties[given.name] = prop
            made.append(prop)
        now = _now()
        return self._reply(
            models,
            "BatchResponseProperty",
            {"status": "COMPLETE", "results": made, "startedAt": now, "completedAt": now},
            status=201,
        )

    # --- associations ----------------------------------------------------------------

    async def deal_associations(self, request: web.Request) -> web.Response:
        models = association_models
        body = await self._body(request, models, "BatchInputPublicFetchAssociationsBatchRequest")
        results = [
            {
                "from": {"id": given.id},
                "to": [
                    {
                        "toObjectId": c,
                        "associationTypes": [
                            {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}
                        ],
                    }
                    for c in self.deal_contacts.get(given.id, [])
                ],
            }
            for given in body.inputs
        ]
        now = _now()
        return self._reply(
            models,
            "BatchResponsePublicAssociationMultiWithLabel",
            {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now},
        )

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "contacts": self.contacts,
                "records": self.contacts,
                "writes": len(self.writes),
                "regressions": self.regressions,
                "refusals": self.refusals,
                "faults_served": self.faults.served,
            }
        )


def _backward(held: str | None, value: str) -> bool:
    return bool(held and value) and LIFECYCLE.index(value) < LIFECYCLE.index(held or "")


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
