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


# --- event time against arrival (issue 25: one event dated 2099 silenced its lead) ------

ARRIVED = 1_796_083_200.0  # 2026-12-01T00:00:00Z, the message's Kafka timestamp


def _page(occurred_at: str, **fields: object) -> bytes:
    event = {"type": "page_view", "event_id": "f1", "lead_id": "L1", "path": "/pricing"}
    return json.dumps({**event, "occurred_at": occurred_at, **fields}).encode()


def _segment_page(original: str, sent: str, received: str) -> bytes:
    return json.dumps(
        {
            "type": "page",
            "messageId": "m1",
            "userId": "L1",
            "originalTimestamp": original,
            "sentAt": sent,
            "receivedAt": received,
            "properties": {"path": "/pricing"},
        }
    ).encode()


@pytest.mark.parametrize(
    ("raw", "arrived_at", "future"),
    [
        (_page("2099-06-01T00:00:00Z"), ARRIVED, True),  # the event, live
        (_page("2026-12-01T00:05:00Z"), ARRIVED, False),  # 300 s ahead: clock skew, allowed
        (_page("2026-12-01T00:05:00.001Z"), ARRIVED, True),  # 1 ms past the allowance
        (_page("2026-11-30T00:00:00Z"), ARRIVED, False),  # the past is not bounded here
        (_page("2099-06-01T00:00:00Z"), None, False),  # offline, no arrival known: no bound
        (_page("2099-06-01T00:00:00Z"), -0.001, False),  # Kafka's "no timestamp" (-1 ms)
        # the event's own received_at bounds it, offline as live; the earlier of the two counts
        (_page("2099-06-01T00:00:00Z", received_at="2026-12-01T00:00:00Z"), None, True),
        (_page("2026-12-01T00:10:00Z", received_at="2026-12-01T00:00:00Z"), 2e9, True),
        (_page("2026-12-01T00:04:00Z", received_at="2026-12-01T00:00:00Z"), 2e9, False),
        # Segment: a device clock in 2099 is corrected by receivedAt - (sentAt - original) ...
        (
            _segment_page("2099-06-01T00:00:00Z", "2099-06-01T00:00:02Z", "2026-12-01T00:00:00Z"),
            ARRIVED,
            False,
        ),
        # ... but an event its own device dates after sending it is not, and is refused
        (
            _segment_page("2099-06-01T00:00:00Z", "2026-11-30T23:59:59Z", "2026-12-01T00:00:00Z"),
            None,
            True,
        ),
    ],
)
def test_an_event_dated_past_its_arrival_and_the_clock_skew_is_a_future_event_dead_letter(
    raw: bytes, arrived_at: float | None, future: bool
) -> None:
    out = decode(raw, topic="page_views", offset=7, key=b"L1", arrived_at=arrived_at)
    if future:
        assert isinstance(out, DeadLetter), out
        assert out.reason == "future_event"
        assert "after the message reached us" in out.error
        assert "LEADSTREAM_MAX_CLOCK_SKEW_SECONDS" in out.error
        assert (out.topic, out.offset, out.raw) == ("page_views", 7, raw)
    else:
        assert not isinstance(out, DeadLetter), out.error


def test_the_clock_skew_allowed_is_the_callers() -> None:
    raw = _page("2026-12-01T01:00:00Z")  # an hour ahead of its arrival
    assert isinstance(decode(raw, arrived_at=ARRIVED), DeadLetter)
    assert not isinstance(decode(raw, arrived_at=ARRIVED, max_clock_skew=3600), DeadLetter)


def test_an_erase_request_is_never_refused_for_its_time() -> None:
    raw = json.dumps(
        {"type": "erase", "event_id": "x", "occurred_at": "2099-06-01T00:00:00Z", "lead_id": "L1"}
    ).encode()
    assert not isinstance(decode(raw, arrived_at=ARRIVED), DeadLetter)
