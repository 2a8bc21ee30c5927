"""The collector's pure parts: judging a request's messages, CORS origins, write keys."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from schemas.dead_letter import DeadLetter
from stream_app.codec import Ignored, decode
from stream_app.ingest.collect import allowed_origin, judge, messages_of, subject_key, write_key_of
from stream_app.ingest.tracks import shipped_tracks
from tests.segment_cases import page


def test_every_message_is_judged_by_the_workers_decoder_before_any_is_produced() -> None:
    messages = [
        page("m0"),
        page("m1", userId="\ud800"),  # a lone surrogate: its key cannot be encoded
        page("m2", properties={}),  # no path: the worker dead-letters the page view
        {**page("m3"), "type": "track", "event": "No Rule Reads It"},  # ignored: accepted
        page("m4", anonymousId="\udfff"),
    ]
    judged = judge(messages, shipped_tracks())
    assert [m["messageId"] for m, _, _ in judged.accepted] == ["m0", "m3"]
    assert [(r.index, r.reason) for r in judged.refused] == [
        (1, "not_json"),
        (2, "invalid"),
        (4, "not_json"),
    ]
    assert judged.refused[1].error == "segment page as page_view: path: Field required"
    for message, value, key in judged.accepted:  # the very bytes that were judged
        assert json.loads(value) == message
        assert key == subject_key(message)


def test_a_message_without_an_id_is_refused_as_the_worker_would() -> None:
    track = {"type": "track", "event": "x", "anonymousId": "a", "timestamp": "2026-11-02T10:00Z"}
    (refusal,) = judge([track], shipped_tracks()).refused
    assert (refusal.reason, refusal.error) == (
        "invalid",
        "segment track: messageId: Field required",
    )


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        (None, ("https://shop.example.com",), (True, None)),  # a server-side library
        ("https://any.example", ("*",), (True, "*")),
        ("null", ("*",), (True, "*")),  # answered *, never echoed with credentials
        (
            "https://shop.example.com",
            ("https://shop.example.com",),
            (True, "https://shop.example.com"),
        ),
        ("https://evil.example", ("https://shop.example.com",), (False, None)),
        ("null", ("https://shop.example.com",), (False, None)),
        ("null", ("https://shop.example.com", "null"), (True, "null")),
    ],
)
def test_origins(
    origin: str | None, allowed: tuple[str, ...], expected: tuple[bool, str | None]
) -> None:
    assert allowed_origin(origin, allowed) == expected


def test_a_write_key_that_is_not_unicode_text_is_no_key() -> None:
    assert write_key_of(None, {"writeKey": "\ud800"}) is None
    assert write_key_of("Basic \udcff\udcfe", {}) is None  # header bytes that are not UTF-8
    assert write_key_of(None, {"writeKey": "wk"}) == "wk"


RECEIVED = "2026-12-07T21:00:00.000Z"


def dated(timestamp: str, sent: str, **more: str) -> dict[str, object]:
    return {**page("m0"), "timestamp": timestamp, "sentAt": sent, **more}


@pytest.mark.parametrize(
    ("message", "occurred"),
    [
        # a visitor's clock a day fast: dated by Segment's correction, not refused
        (dated("2026-12-08T20:59:00Z", "2026-12-08T21:00:00Z"), "2026-12-07T20:59:00Z"),
        # a phone in 2099: the same
        (dated("2099-06-01T00:00:00Z", "2099-06-01T00:00:05Z"), "2026-12-07T20:59:55Z"),
        # a clock a week slow: the event is not aged by the clock's error either
        (dated("2026-11-30T20:58:00Z", "2026-11-30T21:00:00Z"), "2026-12-07T20:58:00Z"),
        # a clock within the allowance: the timestamp as sent, not moved by the network
        (dated("2026-12-07T20:58:00Z", "2026-12-07T20:59:59Z"), "2026-12-07T20:58:00Z"),
        # a server library importing history with a good clock: as sent
        (dated("2026-01-01T00:00:00Z", "2026-12-07T21:00:00Z"), "2026-01-01T00:00:00Z"),
    ],
)
def test_a_senders_clock_is_corrected_as_segments_api_does(
    message: dict[str, object], occurred: str
) -> None:
    (sent,) = messages_of("page", message, RECEIVED)
    judged = judge([sent], shipped_tracks())
    assert judged.refused == []
    (_, value, _) = judged.accepted[0]
    event = decode(value, tracks=shipped_tracks())
    assert not isinstance(event, (DeadLetter, Ignored))
    assert event.occurred_at == datetime.fromisoformat(occurred.replace("Z", "+00:00"))


def test_a_future_timestamp_from_a_good_clock_is_still_refused() -> None:
    # the clock that sent the batch is right, so the event's own date is the lie
    (sent,) = messages_of("page", dated("2099-06-01T00:00:00Z", RECEIVED), RECEIVED)
    (refusal,) = judge([sent], shipped_tracks()).refused
    assert refusal.reason == "future_event"
