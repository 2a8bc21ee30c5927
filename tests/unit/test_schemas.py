"""Message models: strict validation, and JSON Schema files that are never stale."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from schemas import EVENT_MODELS, parse_event
from schemas.generate import OUT_DIR, rendered, stale

GOOD = {
    "type": "page_view",
    "event_id": "e1",
    "occurred_at": "2026-11-02T10:00:00Z",
    "anonymous_id": "c1",
    "path": "/pricing",
}


def test_checked_in_json_schemas_are_fresh() -> None:
    assert stale() == [], "run `make schemas` and commit schemas/json/"


def test_there_is_a_schema_file_per_model_and_one_for_the_union() -> None:
    names = {p.name for p in OUT_DIR.glob("*.json")}
    for model in EVENT_MODELS:
        assert f"{model.model_fields['type'].default}.json" in names
    assert {"inbound_event.json", "stage_transition.json", "dead_letter.json"} <= names


def test_the_generated_schema_accepts_and_rejects_like_pydantic() -> None:
    union = json.loads(rendered()["inbound_event.json"])
    jsonschema.validate(GOOD, union)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**GOOD, "surprise": 1}, union)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"occurred_at": "2026-11-02T10:00:00"}, "timezone"),
        ({"occurred_at": "9999-01-01T00:00:00Z"}, "outside"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"anonymous_id": None}, "needs a lead_id, an anonymous_id, or both"),
        ({"event_id": ""}, "1 to 200 characters"),
        ({"path": "x" * 5000}, "at most 4096 characters"),
        ({"type": "page_vu"}, "does not match any of the expected tags"),
    ],
)
def test_bad_events_are_rejected_with_a_reason(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_event({**GOOD, **change})


def test_events_are_frozen() -> None:
    event = parse_event(GOOD)
    with pytest.raises(ValidationError):
        event.event_id = "other"  # type: ignore[misc]


def test_identify_needs_both_ids() -> None:
    with pytest.raises(ValidationError, match="lead_id"):
        parse_event(
            {**GOOD, "type": "identify", "path": None} | {"path": None}
            and {
                "type": "identify",
                "event_id": "i",
                "occurred_at": GOOD["occurred_at"],
                "anonymous_id": "c1",
            }
        )
