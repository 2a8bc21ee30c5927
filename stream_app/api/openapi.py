"""The API's OpenAPI 3.1 description, served at /openapi.json (a test checks the routes)."""

from __future__ import annotations

from typing import Any

from schemas.transitions import STAGES

_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 20},
}
_JSON = {"application/json": {"schema": {"type": "object"}}}


def _op(
    summary: str,
    params: list[dict[str, Any]] | None = None,
    *,
    open_: bool = False,
    not_found: bool = False,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": _JSON}}
    if not open_:
        responses["401"] = {"description": "missing or wrong bearer token (when one is set)"}
    if not_found:
        responses["404"] = {"description": "not found"}
    if params:
        responses["400"] = {"description": "bad query parameter"}
    op: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": responses}
    if open_:
        op["security"] = []
    return {"get": op}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Leadstream query API",
        "version": "1",
        "description": "Current lead scores, stages and funnel, read from the Redis projection.",
    },
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/health": _op("Liveness: the process answers", open_=True),
        "/ready": _op("Readiness: Redis answers (503 otherwise)", open_=True),
        "/leads": _op(
            "Hottest leads, overall or in one stage",
            [
                {
                    "name": "stage",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(STAGES)},
                },
                _LIMIT,
            ],
        ),
        "/leads/{lead_id}": _op(
            "A lead: scores, grade, stage, contributing rules, recent transitions",
            [_path("lead_id")],
            not_found=True,
        ),
        "/accounts": _op("Hottest accounts (sum of each account's top-N leads)", [_LIMIT]),
        "/accounts/{account_id}": _op(
            "An account: its score and leads", [_path("account_id")], not_found=True
        ),
        "/funnel": _op(
            "Counts per stage, MQL->SQL conversion, median days to MQL and to SQL, "
            "by source and campaign, leads waiting for sales within / past the SLA, and "
            "whether the newest MQLs' conversion says the MQL definition needs review"
        ),
        "/metrics": _op(
            "Prometheus metrics of this API process (requests by route and status); "
            "each worker serves its own on LEADSTREAM_WORKER_PORT"
        ),
        "/openapi.json": _op("This description"),
    },
}
