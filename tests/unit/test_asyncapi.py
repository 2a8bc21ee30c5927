"""The AsyncAPI document: every topic, every reference resolvable, payloads as pydantic says."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from schemas.generate import rendered
from stream_app.cloudevents import event_type
from stream_app.topics import INPUTS, OUTPUTS
from tests.unit.test_segment import RUDDER_PAGE

DOC = json.loads(rendered()["asyncapi.json"])


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(ref: str) -> Any:
    node: Any = DOC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_it_is_asyncapi_3_with_a_channel_and_an_operation_per_topic() -> None:
    assert DOC["asyncapi"] == "3.0.0"
    assert set(DOC["channels"]) == set(INPUTS) | set(OUTPUTS)
    for topic in INPUTS:
        assert DOC["operations"][f"receive_{topic}"]["action"] == "receive"
    for topic in OUTPUTS:
        assert DOC["operations"][f"send_{topic}"]["action"] == "send"


def test_every_reference_resolves() -> None:
    for ref in refs(DOC):
        assert resolve(ref) is not None, ref


def test_output_messages_declare_their_cloudevents_headers() -> None:
    for name in ("stage_transition", "sla_breach", "score_update", "dead_letter"):
        headers = DOC["components"]["messages"][name]["headers"]
        assert headers["properties"]["ce_type"]["const"] == event_type(name)


def validate(instance: Any, ref: str) -> None:
    schema = {"$ref": ref, "components": DOC["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_payloads_validate_as_the_pydantic_models_do() -> None:
    from tests.unit.test_notify import transition

    validate(json.loads(transition(1).model_dump_json()), "#/components/schemas/StageTransition")
    native = {
        "type": "page_view",
        "event_id": "e",
        "occurred_at": "2026-11-02T10:00:00Z",
        "anonymous_id": "a",
        "path": "/",
    }
    inbound = DOC["components"]["messages"]["inbound_event"]["payload"]
    jsonschema.Draft202012Validator(
        {"oneOf": inbound["oneOf"], "components": DOC["components"]}
    ).validate(native)
    validate(RUDDER_PAGE, "#/components/schemas/SegmentPage")


def test_a_score_update_tombstone_is_declared_with_the_headers_it_carries() -> None:
    from datetime import UTC, datetime

    from schemas.erasures import ErasureEvent
    from stream_app.cloudevents import tombstone_headers

    channel = DOC["channels"]["lead_score_updates"]["messages"]
    assert set(channel) == {"score_update", "score_update_deleted"}
    message = DOC["components"]["messages"]["score_update_deleted"]
    assert message["payload"] == {"type": "null"}
    erasure = ErasureEvent(
        erasure_id="x-1", lead_id="L1", found=True, requested_at=datetime(2026, 11, 3, tzinfo=UTC)
    )
    sent = {k: v.decode() for k, v in tombstone_headers("L1", erasure, source="/leadstream/a")}
    jsonschema.Draft202012Validator(message["headers"]).validate(sent)
    assert set(message["headers"]["properties"]) == set(sent)
