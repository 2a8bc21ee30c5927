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


def _page_view(**ids: str) -> bytes:
    return json.dumps({**json.loads(GOOD), **ids}).encode()


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ({"lead_id": "acct\x001"}, "lead_id: an id must be printable: character 5 is U+0000"),
        ({"lead_id": "a\nb"}, "character 2 is U+000A"),
        ({"lead_id": "a\x7fb"}, "U+007F"),
        ({"lead_id": "a\u200bb"}, "U+200B"),  # zero-width space (a format character)
        ({"lead_id": "a\u2028b"}, "U+2028"),  # line separator
        ({"lead_id": "a\u00a0b"}, "U+00A0"),  # no-break space: only the ASCII space is kept
        ({"anonymous_id": "\x1b[31mred", "lead_id": "L1"}, "anonymous_id: "),
        ({"event_id": "e\x00"}, "event_id: "),
        ({"lead_id": "x" * 201}, "1 to 200 characters (this one has 201)"),
        ({"lead_id": "   "}, "1 to 200 characters (this one has 0)"),
    ],
)
def test_an_id_outside_the_id_alphabet_is_a_dead_letter_of_its_own(
    ids: dict[str, str], error: str
) -> None:
    out = decode(_page_view(**ids), topic="page_views", partition=0, offset=1, key=b"k")
    assert isinstance(out, DeadLetter)
    assert (out.reason, error in out.error) == ("invalid_id", True), out.error
    assert "acct" not in out.error  # the error names the character, never the id


@pytest.mark.parametrize(
    "lead_id", ["acct{1}", "a/b", "100%", "two words", "Zoë 😀", "ü" * 200, "a'\"<>?#&"]
)
def test_every_printable_id_is_accepted(lead_id: str) -> None:
    event = decode(_page_view(lead_id=lead_id))
    assert isinstance(event, PageView) and event.lead_id == lead_id


def test_a_segment_message_with_a_control_character_in_its_user_id_is_an_invalid_id() -> None:
    raw = json.dumps(
        {
            "type": "page",
            "messageId": "m-1",
            "userId": "u\x00-1",
            "timestamp": "2026-11-02T10:00:00Z",
            "properties": {"path": "/pricing"},
        }
    ).encode()
    out = decode(raw, topic="rudder-events")
    assert isinstance(out, DeadLetter) and out.reason == "invalid_id", out
    assert "userId: an id must be printable" in out.error


def test_a_dead_letter_keeps_the_message_but_not_the_persons_address_or_phone() -> None:
    """Issue 25: a dead letter's raw bytes kept an address and a phone after ``erase``."""
    segment = {
        "type": "identify",  # no messageId: refused
        "userId": "u-1",
        "timestamp": "2026-11-02T10:00:00Z",
        "context": {"ip": "203.0.113.9", "traits": {"phone_number": "+1 555 0100"}},
        "traits": {
            "email": "Jane.Doe@acme.com",
            "firstName": "Jane",
            "address": {"street": "1 Main St", "city": "Springfield"},
            "plan": "pro",
            "note": "write to jane@example.org",
        },
    }
    raw = json.dumps(segment).encode()
    out = decode(raw, topic="identities", key=b"jane.doe@acme.com")
    assert isinstance(out, DeadLetter) and out.reason == "invalid"
    kept = json.loads(out.raw)
    assert kept["traits"] == {
        "email": "[redacted]@acme.com",
        "firstName": "[redacted]",
        "address": "[redacted]",
        "plan": "pro",
        "note": "write to [redacted]@example.org",
    }
    assert kept["context"] == {"ip": "[redacted]", "traits": {"phone_number": "[redacted]"}}
    assert (kept["userId"], out.redacted, out.raw_size) == ("u-1", 6, len(raw))
    assert out.key == "[redacted]@acme.com"
    for secret in (b"Jane", b"jane", b"555", b"Main St", b"203.0.113"):
        assert secret not in out.raw


def test_bytes_that_are_not_json_lose_their_addresses_and_nothing_else() -> None:
    out = decode(b"oops: jane.doe@acme.com called +1 555 0100", topic="t", offset=1)
    assert isinstance(out, DeadLetter) and out.reason == "not_json"
    assert out.raw == b"oops: [redacted]@acme.com called +1 555 0100"  # a phone in free text stays
    assert out.redacted == 1
    plain = decode(b"nope", topic="t", offset=2)
    assert isinstance(plain, DeadLetter) and (plain.raw, plain.redacted) == (b"nope", 0)
