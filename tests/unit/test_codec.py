"""The boundary: every kind of bad message becomes a dead letter with a reason."""

from __future__ import annotations

import json

import pytest

from schemas.dead_letter import DeadLetter
from schemas.events import PageView
from stream_app.codec import MAX_DEAD_LETTER_RAW, decode

GOOD = json.dumps(
    {
        "type": "page_view",
        "event_id": "e1",
        "occurred_at": "2026-11-02T10:00:00Z",
        "lead_id": "L1",
        "path": "/pricing",
    },
    separators=(",", ":"),
).encode()


def test_a_good_message_decodes_to_its_event() -> None:
    assert isinstance(decode(GOOD), PageView)


@pytest.mark.parametrize(
    ("raw", "reason", "error"),
    [
        (b"not json", "not_json", "Invalid JSON"),
        (b"\xff\xfe{}", "not_utf8", "not UTF-8"),
        (b'{"type": "telepathy", "event_id": "x"}', "unknown_type", "telepathy"),
        (b'{"event_id": "x"}', "invalid", "no 'type' field"),
        (b"[1, 2]", "invalid", "object"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, "too_deep", "recursion limit"),
        (GOOD.replace(b'"lead_id":"L1"', b'"lead_id":null'), "invalid", "needs a lead_id"),
        (
            GOOD.replace(b"2026-11-02T10:00:00Z", b"2026-11-02T10:00:00"),
            "invalid",
            "occurred_at: Input should have timezone info",
        ),
        (GOOD.replace(b"/pricing", b"/" + b"x" * 5000), "invalid", "path: String should"),
        (None, "invalid", "empty message"),
    ],
)
def test_bad_messages_become_dead_letters(raw: bytes | None, reason: str, error: str) -> None:
    out = decode(raw, topic="page_views", partition=3, offset=42, key=b"L1")
    assert isinstance(out, DeadLetter)
    assert out.reason == reason
    assert error in out.error
    assert (out.topic, out.partition, out.offset, out.key) == ("page_views", 3, 42, "L1")
    assert out.raw == (raw or b"")[:MAX_DEAD_LETTER_RAW]


def test_a_ten_megabyte_message_is_too_large_and_truncated_in_the_dead_letter() -> None:
    raw = b'{"type": "page_view", "path": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    out = decode(raw)
    assert isinstance(out, DeadLetter)
    assert out.reason == "too_large"
    assert out.raw_size == len(raw)
    assert len(out.raw) == MAX_DEAD_LETTER_RAW
    # it survives its own round trip as JSON (raw travels base64-encoded)
    assert DeadLetter.model_validate_json(out.model_dump_json()) == out


def test_the_module_examples_hold() -> None:
    import doctest

    import stream_app.codec

    result = doctest.testmod(stream_app.codec)
    assert result.attempted >= 1 and result.failed == 0
