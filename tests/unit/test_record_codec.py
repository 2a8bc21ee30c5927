"""The stored record: compact (MessagePack, positional), exact, and readable after a change.

The records table and its changelog hold one record per lead; the replay's
output depends on every value surviving the trip through bytes, so these
tests compare whole states, not a few fields.
"""

from __future__ import annotations

import dataclasses
import json

import msgpack
import pytest

from schemas.events import EVENT_ADAPTER
from stream_app.codec import STATE_FIELDS, decode_record, due_at_of, encode_record
from stream_app.messages import Record
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import LeadState, new_state
from stream_app.worker.pipeline import InMemoryPipeline
from tools.traffic import generate


@pytest.fixture(scope="module")
def stored(rules: Rules) -> list[bytes]:
    """Every record a small run of generated traffic leaves in the table."""
    pipeline = InMemoryPipeline(rules, partitions=2, batch=100)
    for event in generate(300, 5, id_prefix="rc-"):
        subject = event.get("lead_id") or event.get("anonymous_id")
        pipeline.feed(json.dumps(event).encode(), key=subject.encode() if subject else None)
    pipeline.run()
    return list(pipeline.records.values())


def test_the_layout_names_every_state_field_in_order() -> None:
    # A field added to LeadState is appended to codec.STATE_FIELDS (never inserted):
    # records already stored then decode with the new field's default.
    assert tuple(f.name for f in dataclasses.fields(LeadState)) == STATE_FIELDS


def test_every_stored_record_decodes_to_what_was_encoded(stored: list[bytes]) -> None:
    assert len(stored) > 100
    kinds = set()
    for raw in stored:
        record = decode_record(raw)
        assert record is not None
        assert encode_record(record) == raw  # stable: the same bytes again
        again = decode_record(encode_record(record))
        assert again is not None and again.state == record.state
        kinds.update(
            k for k in ("buckets", "signal_log", "seen", "profile") if getattr(record.state, k)
        )
        for log in record.state.signal_log.values():
            assert all(isinstance(entry, tuple) for entry in log)
        for days in record.state.buckets.values():
            assert all(isinstance(day, int) for day in days)
    assert kinds == {"buckets", "signal_log", "seen", "profile"}


def test_a_record_is_less_than_half_its_json_size(stored: list[bytes]) -> None:
    records = [decode_record(raw) for raw in stored]
    compact = sum(len(raw) for raw in stored)
    as_json = sum(len(r.model_dump_json()) for r in records if r is not None)
    assert compact < 0.5 * as_json


def test_held_events_awaiting_claims_and_links_survive() -> None:
    event = EVENT_ADAPTER.validate_python(
        {
            "type": "page_view",
            "event_id": "e1",
            "occurred_at": "2026-11-02T10:00:00Z",
            "lead_id": "L1",
            "anonymous_id": "a1",
            "path": "/pricing",
        }
    )
    record = Record(state=new_state("L1", "L1"), awaiting=["a1"], held=[event], linked=["a0"])
    back = decode_record(encode_record(record))
    assert back is not None
    assert (back.awaiting, back.held, back.linked) == (["a1"], [event], ["a0"])


def test_a_record_of_the_first_layout_is_still_read() -> None:
    state = new_state("L1", "L1")
    state.buckets = {"blog_view": {20000: 2}}
    state.signal_log = {"repeat": [(1.5, "s1")]}
    state.due_at = 1_800_000_000.25
    json_bytes = Record(state=state).model_dump_json().encode()  # what older workers wrote
    back = decode_record(json_bytes)
    assert back is not None and back.state == state
    assert due_at_of(json_bytes) == 1_800_000_000.25


def test_a_record_stored_before_a_field_was_appended_gets_its_default() -> None:
    state = new_state("L1", "L1")
    state.version = 7
    version, due_at, values, awaiting, held, linked = msgpack.unpackb(
        encode_record(Record.of(state)), strict_map_key=False
    )
    older = msgpack.packb([version, due_at, values[:-2], awaiting, held, linked])  # 2 fewer
    back = decode_record(older)
    assert back is not None
    assert back.state == state  # the two missing fields have their defaults (None)


@pytest.mark.parametrize("due_at", [None, 0.0, 1_800_000_000.123456, -5.5])
def test_the_due_index_reads_due_at_without_decoding(due_at: float | None) -> None:
    state = new_state("L1", "L1")
    state.due_at = due_at
    assert due_at_of(encode_record(Record.of(state))) == due_at


def test_an_unknown_layout_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown layout version 9"):
        decode_record(msgpack.packb([9, None, [], [], [], []]))
