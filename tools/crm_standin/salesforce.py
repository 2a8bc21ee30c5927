"""A Salesforce stand-in: the REST endpoints crm-sync calls through simple-salesforce, every
request checked against Salesforce's published Postman items and the rules written from its
documentation (``vendor/salesforce/``: what each is, where it came from, what is unchecked).

    POST  /services/oauth2/token                              client credentials (or a JWT)
    GET   /services/data/vXX.X/query?q=SELECT Id, <ext> FROM Lead WHERE <ext> IN (...)
    PATCH /services/data/vXX.X/composite/sobjects/Lead/<ext>  upsert, <= 200, by external id
    PATCH /services/data/vXX.X/composite/sobjects             update by record Id (erasure)
    GET   /services/data/vXX.X/sobjects/Lead/describe         the Lead's fields

What Salesforce documents and this does too: a token only for the connected app's
client id and secret (in the body or as HTTP Basic), a bearer token on every data
call (else 401 INVALID_SESSION_ID); a body of ``allOrNone`` (boolean) and ``records``
(1 to 200, else EXCEEDED_ID_LIMIT), each with ``attributes.type`` equal to the URI's
sObject; for an upsert the external id field's value and no ``Id``; an unknown field
or a value of the wrong JSON type refuses the whole request (400, Salesforce's error
list shape); a new Lead without ``LastName`` or ``Company``, a ``Status`` outside the
picklist, a duplicated external id in one call are that record's errors (or, with
``allOrNone``, every record's). Answers come in request order: ``id``, ``success``,
``errors``, ``created``. Every write is kept in ``writes`` with the
``Leadstream_Version__c`` it carried; ``regressions`` counts writes of a lower version
than the Lead held. ``faults`` injects 429/503 (Retry-After), 500s, timeouts, slow
answers on the data endpoints (not on the token endpoint).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from stream_app.crm.fields import FIELDS
from tools.crm_standin.faults import FAULTS, Faults, faults_route
from tools.crm_standin.serving import Serving

VENDOR = Path(__file__).parent / "vendor" / "salesforce"
RULES: dict[str, Any] = json.loads((VENDOR / "rules.json").read_text())
#: Salesforce's Postman items (CC0), verbatim: method, URL template, body keys and types.
POSTMAN = {p.stem: json.loads(p.read_text()) for p in (VENDOR / "postman").glob("*.json")}
_POSTMAN_TYPES = {"Boolean": bool, "SObject[]": list}
_VERSION = r"/services/data/v{version:\d+\.\d}"
_QUERY = re.compile(
    r"^SELECT\s+(?P<fields>[\w\s,]+?)\s+FROM\s+(?P<object>\w+)\s+WHERE\s+(?P<key>\w+)\s+IN\s+"
    r"\((?P<values>.*)\)$",
    re.IGNORECASE | re.DOTALL,
)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_KIND = {"text": "string", "number": "double", "datetime": "datetime"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Malformed(ValueError):
    """The whole request is refused: 400 with Salesforce's error list."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def postman_body_keys(item: str) -> dict[str, type]:
    """The body keys and their types of a Postman item (``rawModeData``)."""
    raw = json.loads(POSTMAN[item]["rawModeData"])
    return {k: _POSTMAN_TYPES[v] for k, v in raw.items()}


@dataclass
class Write:
    """One Lead's write as the stand-in took it."""

    record_id: str
    fields: dict[str, Any]
    version: int | None
    at: str


@dataclass
class SalesforceStandIn(Serving):
    client_id: str = "standin-client"
    client_secret: str = "standin-secret"
    host: str = "127.0.0.1"
    port: int = 0
    faults: Faults = field(default_factory=Faults)
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    regressions: list[tuple[str, int, int]] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    batch_sizes: list[int] = field(default_factory=list)  # records per upsert taken
    status_picklist: tuple[str, ...] = tuple(RULES["lead"]["status_picklist"])

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.fields: dict[str, str] = dict(RULES["lead"]["standard_fields"])
        for f in FIELDS:  # created by the admin, as docs/crm.md says
            self.fields[f.salesforce] = _KIND[f.kind]
        self.external_ids = {FIELDS[0].salesforce}

    # --- what a test reads ---------------------------------------------------------

    def held(self) -> dict[str, dict[str, Any]]:
        return self.leads

    def lead_by(self, name: str, value: Any) -> dict[str, Any] | None:
        return next((r for r in self.leads.values() if r.get(name) == value), None)

    # --- serving -------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app[FAULTS] = self.faults
        r = app.router
        r.add_post(RULES["token"]["path"], self.token)
        r.add_get(_VERSION + "/query", self.query)
        r.add_get(_VERSION + "/query/", self.query)
        r.add_patch(_VERSION + "/composite/sobjects/{sobject}/{ext}", self.upsert)
        r.add_patch(_VERSION + "/composite/sobjects", self.update)
        r.add_get(_VERSION + "/sobjects/{sobject}/describe", self.describe)
        r.add_get(_VERSION + "/sobjects/{sobject}/describe/", self.describe)
        r.add_post("/__standin/faults", faults_route)
        r.add_get("/__standin/state", self.state)
        return app

    @staticmethod
    def _errors(
        status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            [{"message": message, "errorCode": code}], status=status, headers=headers
        )

    def _fault_shape(self, status: int, message: str, headers: dict[str, str]) -> web.Response:
        code = {429: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE"}.get(status, "UNKNOWN")
        return self._errors(status, code, message, headers)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/services/data/"):
            bad = RULES["errors"]["invalid_session"]
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                return self._answer(
                    request, self._errors(bad["status"], bad["errorCode"], bad["message"])
                )
            version = float(request.match_info.get("version", "0"))
            fault = await self.faults.next(request, {}, self._fault_shape)
            if fault is not None:
                return self._answer(request, fault)
            if not 42.0 <= version <= 66.0:
                return self._answer(
                    request, self._errors(404, "NOT_FOUND", f"API version {version} is not served")
                )
        try:
            response = await handler(request)
        except Malformed as exc:
            self.refusals.append(f"{request.method} {request.path}: {exc.code}: {exc.message}")
            response = self._errors(exc.status, exc.code, exc.message)
        return self._answer(request, response)

    def _answer(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        self.requests.append((request.method, request.path, response.status))
        return response

    # --- OAuth 2.0 -----------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        rules = RULES["token"]

        def refuse(kind: str, text: str) -> web.Response:
            self.refusals.append(f"token: {text}")
            return web.json_response(
                {"error": rules["errors"][kind], "error_description": text}, status=400
            )

        if request.content_type != rules["content_type"]:
            return refuse("bad_request", f"the body must be {rules['content_type']}")
        form = await request.post()
        grant = str(form.get("grant_type"))
        if grant not in rules["grant_types"]:
            return refuse("bad_grant", f"grant type not supported: {grant}")
        if grant == "client_credentials":
            client_id, secret = str(form.get("client_id")), str(form.get("client_secret"))
            basic = request.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            if (client_id, secret) != (self.client_id, self.client_secret):
                return refuse("bad_client", "invalid client credentials")
        elif not form.get("assertion"):
            return refuse("bad_request", "the JWT bearer grant needs an assertion")
        access = f"00D000000000001!{uuid.uuid4().hex}"
        self.tokens.add(access)
        org = "https://standin.my.salesforce.com"
        body = {
            "access_token": access,
            "signature": base64.b64encode(uuid.uuid4().bytes).decode(),
            "scope": "api",
            "instance_url": org,
            "id": f"{org}/id/00D000000000001AAA/005000000000001AAA",
            "token_type": "Bearer",
            "issued_at": str(int(datetime.now(UTC).timestamp() * 1000)),
        }
        assert sorted(body) == sorted(rules["response_keys"])  # our answer, as documented
        return web.json_response(body)

    # --- query ---------------------------------------------------------------------

    async def query(self, request: web.Request) -> web.Response:
        rules = RULES["query"]
        soql = request.query.get(rules["param"])
        match = _QUERY.match(soql.strip()) if soql else None
        if match is None:
            raise Malformed(
                rules["malformed"], f"only SELECT ... FROM Lead WHERE f IN (...): {soql!r}"
            )
        if match["object"] != "Lead":
            raise Malformed("INVALID_TYPE", f"sObject type '{match['object']}' is not supported.")
        wanted = [f.strip() for f in match["fields"].split(",")]
        for name in [*wanted, match["key"]]:
            if name not in self.fields:
                raise Malformed("INVALID_FIELD", f"No such column '{name}' on entity 'Lead'.")
        inner = match["values"]
        values = [re.sub(r"\\(.)", r"\1", v) for v in _QUOTED.findall(inner)]
        if _QUOTED.sub("", inner).replace(",", "").strip():
            raise Malformed(rules["malformed"], "IN takes a list of quoted strings")
        version = request.match_info["version"]
        records = [
            {
                "attributes": {
                    "type": "Lead",
                    "url": f"/services/data/v{version}/sobjects/Lead/{rid}",
                },
                **{name: lead.get(name) for name in wanted},
            }
            for rid, lead in self.leads.items()
            if lead.get(match["key"]) in values
        ]
        body = {"totalSize": len(records), "done": True, "records": records}
        assert sorted(body) == sorted(rules["response_keys"])
        return web.json_response(body)

    # --- sObject Collections -------------------------------------------------------

    async def _collection(
        self, request: web.Request, rules: dict[str, Any]
    ) -> tuple[bool, list[dict[str, Any]]]:
        version = float(request.match_info["version"])
        if version < rules["min_version"]:
            raise Malformed(
                "NOT_FOUND", f"available in API version {rules['min_version']} and later", 404
            )
        if request.method != rules["method"]:
            raise Malformed("METHOD_NOT_ALLOWED", f"{request.method} is not {rules['method']}", 405)
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise Malformed(RULES["errors"]["json_parser"], "the body is not JSON") from None
        keys = postman_body_keys("sobject_collections_update")
        if not isinstance(body, dict) or "records" not in body:
            raise Malformed(RULES["errors"]["json_parser"], "an object with records is expected")
        for key, value in body.items():
            if key not in keys:
                raise Malformed(RULES["errors"]["json_parser"], f'Unrecognized field "{key}"')
            if not isinstance(value, keys[key]):
                raise Malformed(
                    RULES["errors"]["json_parser"], f"{key}: a {keys[key].__name__} is expected"
                )
        records = body["records"]
        if not records:
            raise Malformed(RULES["errors"]["json_parser"], "records: at least one is expected")
        if len(records) > rules["max_records"]:
            raise Malformed(
                RULES["collections_upsert"]["too_many"],
                f"record limit reached. cannot submit more than {rules['max_records']} records "
                "into this call",
            )
        return bool(body.get("allOrNone", False)), records

    def _check_record(self, record: Any, sobject: str) -> dict[str, Any]:
        """The record's fields, or Malformed for what Salesforce refuses the request for."""
        parser = RULES["errors"]["json_parser"]
        if not isinstance(record, dict):
            raise Malformed(parser, "each record is a JSON object")
        attributes = record.get("attributes")
        if not isinstance(attributes, dict) or "type" not in attributes:
            raise Malformed(parser, "each record needs an attributes map with a type")
        if attributes["type"] != sobject:
            raise Malformed("INVALID_TYPE", f"{attributes['type']}: only {sobject} in this call")
        fields = {k: v for k, v in record.items() if k != "attributes"}
        for name, value in fields.items():
            kind = self.fields.get(name)
            if kind is None:
                raise Malformed(
                    RULES["errors"]["invalid_field"],
                    f"No such column '{name}' on sobject of type Lead",
                )
            if value is None:
                continue
            ok = {
                "double": isinstance(value, (int, float)) and not isinstance(value, bool),
                "datetime": isinstance(value, str) and _is_datetime(value),
            }.get(kind, isinstance(value, str))
            if not ok:
                raise Malformed(
                    RULES["errors"]["bad_value"], f"{name}: {type(value).__name__} is not a {kind}"
                )
        return fields

    async def upsert(self, request: web.Request) -> web.Response:
        rules = RULES["collections_upsert"]
        sobject, ext = request.match_info["sobject"], request.match_info["ext"]
        all_or_none, records = await self._collection(request, rules)
        if sobject != "Lead":
            raise Malformed("NOT_FOUND", f"The requested resource does not exist: {sobject}", 404)
        if ext not in self.external_ids:
            raise Malformed(RULES["errors"]["invalid_field"], f"{ext} is not an External ID field")
        checked = [self._check_record(r, sobject) for r in records]
        self.batch_sizes.append(len(checked))
        for fields in checked:
            if "Id" in fields:
                raise Malformed("INVALID_FIELD", "Only external ids are supported, not record Ids")
            if not isinstance(fields.get(ext), str) or not fields[ext]:
                raise Malformed(RULES["errors"]["required_missing"], f"{ext}: a value is required")
        seen: dict[str, int] = {}
        for fields in checked:
            seen[fields[ext]] = seen.get(fields[ext], 0) + 1
        results: list[dict[str, Any]] = []
        plan: list[tuple[str | None, dict[str, Any]]] = []
        for fields in checked:
            rid = next((i for i, r in self.leads.items() if r.get(ext) == fields[ext]), None)
            error = self._record_error(fields, rid is None, seen[fields[ext]] > 1, ext)
            plan.append((rid, fields))
            results.append(
                {"id": rid, "success": error is None, "errors": [error] if error else []}
                | ({"created": False} if error is None else {})
            )
        failed = any(not r["success"] for r in results)
        for n, ((rid, fields), result) in enumerate(zip(plan, results, strict=True)):
            if all_or_none and failed:
                if result["success"]:
                    results[n] = {"id": None, "success": False, "errors": [_rolled_back()]}
                continue
            if not result["success"]:
                continue
            record_id = rid or self._new_id()
            self._apply(record_id, fields)
            results[n] = {"id": record_id, "success": True, "errors": [], "created": rid is None}
        for result in results:
            assert set(result) <= set(rules["result_keys"])
        return web.json_response(results)

    async def update(self, request: web.Request) -> web.Response:
        rules = RULES["collections_update"]
        all_or_none, records = await self._collection(request, rules)
        checked = []
        for record in records:
            sobject = record.get("attributes", {}).get("type") if isinstance(record, dict) else None
            checked.append(self._check_record(record, sobject or "Lead"))
        results: list[dict[str, Any]] = []
        for fields in checked:
            rid = fields.get("Id")
            if rid not in self.leads:
                error: dict[str, Any] = {
                    "statusCode": "ENTITY_IS_DELETED" if rid else "MISSING_ARGUMENT",
                    "message": f"no Lead with Id {rid}",
                    "fields": [],
                }
                results.append({"id": rid, "success": False, "errors": [error]})
            else:
                results.append({"id": rid, "success": True, "errors": []})
        failed = any(not r["success"] for r in results)
        for n, (fields, result) in enumerate(zip(checked, results, strict=True)):
            if all_or_none and failed:
                if result["success"]:
                    results[n] = {"id": result["id"], "success": False, "errors": [_rolled_back()]}
                continue
            if result["success"]:
                self._apply(fields["Id"], {k: v for k, v in fields.items() if k != "Id"})
        return web.json_response(results)

    def _record_error(
        self, fields: dict[str, Any], new: bool, duplicate: bool, ext: str
    ) -> dict[str, Any] | None:
        codes = RULES["errors"]
        if duplicate:
            return {
                "statusCode": codes["duplicate_external_id"],
                "message": f"Duplicate external id specified: {fields[ext]}",
                "fields": [ext],
            }
        if new:
            missing = [f for f in RULES["lead"]["required_on_create"] if not fields.get(f)]
            if missing:
                return {
                    "statusCode": codes["required_missing"],
                    "message": f"Required fields are missing: [{', '.join(missing)}]",
                    "fields": missing,
                }
        status = fields.get("Status")
        if status is not None and status not in self.status_picklist:
            return {
                "statusCode": codes["bad_picklist"],
                "message": f"Status: bad value for restricted picklist field: {status}",
                "fields": ["Status"],
            }
        return None

    def _new_id(self) -> str:
        return f"00Q{next(self._ids):015d}"

    def _apply(self, rid: str, fields: dict[str, Any]) -> None:
        lead = self.leads.setdefault(rid, {"Id": rid, "Status": self.status_picklist[0]})
        version = fields.get("Leadstream_Version__c")
        held = lead.get("Leadstream_Version__c")
        if isinstance(version, int) and isinstance(held, int) and version < held:
            self.regressions.append((rid, held, version))
        lead.update(fields)
        self.writes.append(
            Write(rid, dict(fields), version if isinstance(version, int) else None, _now())
        )

    # --- describe ------------------------------------------------------------------

    async def describe(self, request: web.Request) -> web.Response:
        if request.match_info["sobject"] != "Lead":
            raise Malformed("NOT_FOUND", "The requested resource does not exist", 404)
        fields = [
            {
                "name": name,
                "type": kind,
                "externalId": name in self.external_ids,
                "unique": name in self.external_ids,
                "nillable": name not in ("Id", "LastName", "Company"),
                "picklistValues": [
                    {"value": v, "label": v, "active": True, "defaultValue": n == 0}
                    for n, v in enumerate(self.status_picklist)
                ]
                if kind == "picklist"
                else [],
            }
            for name, kind in self.fields.items()
        ]
        return web.json_response({"name": "Lead", "label": "Lead", "fields": fields})

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "records": self.leads,
                "writes": len(self.writes),
                "regressions": self.regressions,
                "refusals": self.refusals,
                "faults_served": self.faults.served,
            }
        )


def _rolled_back() -> dict[str, Any]:
    return {
        "statusCode": RULES["collections_upsert"]["rolled_back"],
        "message": "Record rolled back because not all records were valid and the request "
        "was using AllOrNone header",
        "fields": [],
    }


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
