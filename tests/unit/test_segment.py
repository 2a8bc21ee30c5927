"""Segment-spec messages, as RudderStack and Segment write them, map to native events."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from schemas.dead_letter import DeadLetter
from schemas.events import parse_event
from stream_app.codec import decode
from stream_app.errors import LeadstreamError
from stream_app.ingest.segment import Ignored, Rejected, email_subject, from_segment
from stream_app.ingest.tracks import load_tracks, parse_tracks, shipped_tracks

TRACKS = shipped_tracks()

# What RudderStack's JavaScript SDK sends for an anonymous page view (its Kafka
# destination writes this object as is): userId is "", traits sit in context.
RUDDER_PAGE: dict[str, Any] = {
    "anonymousId": "8d872292709c6fbe",
    "channel": "web",
    "context": {
        "app": {"build": "1.0.0", "name": "RudderLabs JavaScript SDK", "version": "3.0.0"},
        "campaign": {"name": "fall-launch", "source": "google", "medium": "cpc"},
        "library": {"name": "RudderLabs JavaScript SDK", "version": "3.0.0"},
        "locale": "en-US",
        "os": {"name": "", "version": ""},
        "page": {
            "path": "/pricing",
            "referrer": "https://www.google.com/",
            "search": "?utm_source=google",
            "title": "Pricing",
            "url": "https://example.com/pricing?utm_source=google",
        },
        "screen": {"density": 2},
        "sessionId": 1733050000123,
        "traits": {},
        "userAgent": "Mozilla/5.0",
    },
    "event": None,
    "integrations": {"All": True},
    "messageId": "1733050001-9a3e5f7c-0d6b-4d3c-a8f2-3b1c2d4e5f60",
    "originalTimestamp": "2026-11-02T10:00:00.123Z",
    "properties": {"name": "Pricing", "path": "/pricing", "url": "https://example.com/pricing"},
    "receivedAt": "2026-11-02T10:00:01.000Z",
    "request_ip": "203.0.113.7",
    "rudderId": "6b4f6a0e-3c5f-4f7e-9d1c-2a3b4c5d6e7f",
    "sentAt": "2026-11-02T10:00:00.500Z",
    "timestamp": "2026-11-02T10:00:00.623Z",
    "type": "page",
    "userId": "",
}

# Segment's own spec example of an identify: traits at the top level, camelCase.
SEGMENT_IDENTIFY: dict[str, Any] = {
    "anonymousId": "507f191e810c19729de860ea",
    "channel": "browser",
    "context": {"ip": "8.8.8.8", "userAgent": "Mozilla/5.0"},
    "integrations": {"All": False, "Mixpanel": True},
    "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    "receivedAt": "2026-11-02T12:00:00.000Z",
    "sentAt": "2026-11-02T11:59:59.800Z",
    "timestamp": "2026-11-02T11:59:59.900Z",
    "traits": {
        "name": "Peter Gibbons",
        "email": "peter@initech.com",
        "jobTitle": "VP Engineering",
        "company": {"name": "Initech", "employeeCount": 600, "industry": "Software"},
        "address": {"country": "US", "city": "Austin"},
        "plan": "premium",
        "logins": 5,
    },
    "type": "identify",
    "userId": "97980cfea0067",
    "version": "1.1",
}


def mapped(message: dict[str, Any]) -> Any:
    return from_segment(message, TRACKS)


def test_a_rudderstack_page_view_is_a_native_page_view() -> None:
    assert mapped(RUDDER_PAGE) == parse_event(
        {
            "type": "page_view",
            "event_id": RUDDER_PAGE["messageId"],
            "occurred_at": "2026-11-02T10:00:00.623Z",
            "received_at": "2026-11-02T10:00:01.000Z",
            "anonymous_id": "8d872292709c6fbe",
            "path": "/pricing",
            "url": "https://example.com/pricing",
            "title": "Pricing",
            "referrer": "https://www.google.com/",
            "session_id": "1733050000123",
            "campaign": "fall-launch",
            "utm": {"source": "google", "medium": "cpc", "campaign": "fall-launch"},
        }
    )


def test_the_event_time_is_segments_clock_skew_correction_else_timestamp_else_original() -> None:
    # receivedAt - (sentAt - originalTimestamp) = 10:00:01.000 - 0.377 s: RudderStack's own
    assert mapped(RUDDER_PAGE).occurred_at.isoformat() == "2026-11-02T10:00:00.623000+00:00"
    only_original = {k: v for k, v in RUDDER_PAGE.items() if k != "timestamp"}
    assert mapped(only_original).occurred_at.isoformat() == "2026-11-02T10:00:00.623000+00:00"
    as_sent = {k: v for k, v in RUDDER_PAGE.items() if k not in ("timestamp", "sentAt")}
    assert mapped(as_sent).occurred_at.isoformat() == "2026-11-02T10:00:00.123000+00:00"
    no_original = {k: v for k, v in RUDDER_PAGE.items() if k != "originalTimestamp"}
    assert mapped(no_original).occurred_at.isoformat() == "2026-11-02T10:00:00.623000+00:00"


def test_a_device_clock_years_off_is_corrected_by_the_time_it_took_to_send() -> None:
    wrong_clock = {
        **RUDDER_PAGE,
        "timestamp": None,
        "originalTimestamp": "2099-06-01T09:59:50Z",  # 10 s before the device sent it
        "sentAt": "2099-06-01T10:00:00Z",
    }
    # received at 10:00:01 by the server's clock, so it happened 10 s before
    assert mapped(wrong_clock).occurred_at.isoformat() == "2026-11-02T09:59:51+00:00"
    beyond_the_calendar = {**wrong_clock, "sentAt": "0001-01-01T00:00:00Z"}
    assert isinstance(mapped(beyond_the_calendar), Rejected)


def test_a_page_view_without_a_path_takes_it_from_the_url_and_a_country_from_the_context() -> None:
    page = {
        "type": "page",
        "messageId": "m1",
        "timestamp": "2026-11-02T10:00:00Z",
        "userId": "u1",
        "context": {"page": {"url": "https://example.com/demo?x=1"}, "location": {"country": "DE"}},
    }
    event = mapped(page)
    assert (event.path, event.url, event.country, event.lead_id) == (
        "/demo",
        "https://example.com/demo?x=1",
        "DE",
        "u1",
    )


def test_a_segment_identify_with_both_ids_and_top_level_traits_is_an_identify() -> None:
    assert mapped(SEGMENT_IDENTIFY) == parse_event(
        {
            "type": "identify",
            "event_id": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
            "occurred_at": "2026-11-02T11:59:59.900Z",
            "received_at": "2026-11-02T12:00:00.000Z",
            "lead_id": "97980cfea0067",
            "anonymous_id": "507f191e810c19729de860ea",
            "traits": {
                "email": "peter@initech.com",
                "job_title": "VP Engineering",
                "company_name": "Initech",
                "company_size": 600,
                "industry": "Software",
                "country": "US",
            },
        }
    )


def test_rudderstack_identify_traits_in_context_snake_case_are_read_too() -> None:
    message = {
        "type": "identify",
        "messageId": "r-2",
        "originalTimestamp": "2026-11-02T12:00:00Z",
        "userId": "u-7",
        "anonymousId": "a-7",
        "context": {
            "traits": {
                "email": "ann@acme.com",
                "job_title": "Director of Ops",
                "company": {"name": "Acme", "employee_count": "250"},
                "country": "GB",
                "seniority": "Director",
            }
        },
    }
    event = mapped(message)
    assert event.type == "identify"
    assert event.traits is not None
    assert event.traits.model_dump(exclude_none=True) == {
        "email": "ann@acme.com",
        "job_title": "Director of Ops",
        "company_name": "Acme",
        "company_size": 250,
        "country": "GB",
        "seniority": "director",
    }


def test_top_level_traits_override_context_traits() -> None:
    message = {
        **SEGMENT_IDENTIFY,
        "context": {"traits": {"email": "old@initech.com", "department": "eng"}},
    }
    traits = mapped(message).traits
    assert (traits.email, traits.department) == ("peter@initech.com", "eng")


def test_an_identify_with_a_user_id_only_is_a_profile_update() -> None:
    traits = {k: v for k, v in SEGMENT_IDENTIFY["traits"].items() if k != "email"}
    message = {**SEGMENT_IDENTIFY, "anonymousId": None, "traits": traits}
    event = mapped(message)
    assert event.type == "profile_update"
    assert (event.lead_id, event.anonymous_id, event.job_title) == (
        "97980cfea0067",
        None,
        "VP Engineering",
    )


def test_an_email_providers_event_with_only_an_address_is_its_pseudonymous_visitor() -> None:
    opened = {
        "type": "track",
        "event": "Email Opened",
        "messageId": "sg-1",
        "timestamp": "2026-11-02T13:00:00Z",
        "properties": {"email": " Peter@Initech.com ", "campaign_id": "c-1"},
    }
    event = mapped(opened)
    assert event.type == "email_open"
    assert (event.lead_id, event.anonymous_id) == (None, email_subject("peter@initech.com"))
    assert event.anonymous_id == "email:" + hashlib.sha256(b"peter@initech.com").hexdigest()[:32]
    assert "initech" not in event.model_dump_json()  # the address is not carried over


def test_a_server_side_identify_with_an_address_links_its_pseudonym_to_the_lead() -> None:
    message = {**SEGMENT_IDENTIFY, "anonymousId": None}
    event = mapped(message)
    assert event.type == "identify"
    assert (event.lead_id, event.anonymous_id) == (
        "97980cfea0067",
        email_subject("peter@initech.com"),
    )
    assert event.traits.email == "peter@initech.com"
    # with a cookie id the identify links the cookie (the address waits for its own)
    assert mapped(SEGMENT_IDENTIFY).anonymous_id == "507f191e810c19729de860ea"


def test_email_events_before_the_lead_is_known_count_for_the_lead_live_as_offline() -> None:
    from stream_app.scoring.replay import Replay
    from stream_app.worker.pipeline import InMemoryPipeline
    from tests.factories import default_rules

    def click(n: int) -> dict[str, Any]:
        properties = {"email": "ann@acme.com", "link_url": "https://ex.com/pricing"}
        return {
            "type": "track",
            "event": "Email Link Clicked",
            "messageId": f"c-{n}",
            "timestamp": f"2026-11-0{n}T13:00:00Z",
            "properties": properties,
        }

    identify = {
        "type": "identify",
        "messageId": "i-1",
        "timestamp": "2026-11-05T10:00:00Z",
        "userId": "ann",
        "traits": {"email": "ann@acme.com", "title": "VP Sales", "company": {"employees": 400}},
    }
    messages = [click(1), click(2), identify, click(6)]
    rules = default_rules()
    replay = Replay(rules)
    for m in messages:
        replay.process(mapped(m))  # type: ignore[arg-type]
    pipeline = InMemoryPipeline(rules, partitions=4)
    for m in messages:
        pipeline.feed(json.dumps(m).encode(), topic="email_events")
        pipeline.run()
    offline = {s.key: s for s in replay.leads()}
    live = {s.key: s for s in pipeline.leads()}
    assert offline.keys() == live.keys() == {"ann"}
    assert live["ann"].seen == offline["ann"].seen
    assert {"c-1", "c-2", "i-1", "c-6"} <= set(live["ann"].seen)


def test_a_trait_the_profile_refuses_is_left_out_and_the_rest_still_counts() -> None:
    message = {
        **SEGMENT_IDENTIFY,
        "traits": {"email": "not-an-address", "title": "CTO", "employees": "lots"},
    }
    event = mapped(message)
    assert event.type == "identify"
    assert event.traits.model_dump(exclude_none=True) == {"job_title": "CTO"}


def test_an_alias_links_the_previous_id_to_the_user_id() -> None:
    message = {
        "type": "alias",
        "messageId": "al-1",
        "timestamp": "2026-11-02T12:00:00Z",
        "previousId": "anon-5",
        "userId": "u-5",
    }
    assert mapped(message) == parse_event(
        {
            "type": "identify",
            "event_id": "al-1",
            "occurred_at": "2026-11-02T12:00:00Z",
            "lead_id": "u-5",
            "anonymous_id": "anon-5",
        }
    )


def test_a_group_sets_the_leads_account_and_company() -> None:
    message = {
        "type": "group",
        "messageId": "g-1",
        "timestamp": "2026-11-02T12:00:00Z",
        "userId": "u-5",
        "groupId": "acme.com",
        "traits": {"name": "Acme", "industry": "Retail", "employees": 1200, "plan": "enterprise"},
    }
    assert mapped(message) == parse_event(
        {
            "type": "profile_update",
            "event_id": "g-1",
            "occurred_at": "2026-11-02T12:00:00Z",
            "lead_id": "u-5",
            "account_id": "acme.com",
            "company_name": "Acme",
            "industry": "Retail",
            "company_size": 1200,
        }
    )


def test_a_mapped_email_click_carries_its_link_and_campaign() -> None:
    message = {
        "type": "track",
        "event": "Email Link Clicked",
        "messageId": "t-1",
        "timestamp": "2026-11-02T13:00:00Z",
        "userId": "u-5",
        "properties": {
            "email_id": "18vzF7u3z",
            "email_subject": "Welcome",
            "campaign_id": "123456",
            "link_url": "https://example.com/pricing",
        },
        "context": {"campaign": {"name": "nurture-3", "source": "sendgrid", "medium": "email"}},
    }
    assert mapped(message) == parse_event(
        {
            "type": "email_click",
            "event_id": "t-1",
            "occurred_at": "2026-11-02T13:00:00Z",
            "lead_id": "u-5",
            "campaign_id": "123456",
            "url": "https://example.com/pricing",
            "campaign": "nurture-3",
            "utm": {"source": "sendgrid", "medium": "email", "campaign": "nurture-3"},
        }
    )


@pytest.mark.parametrize(
    ("name", "properties", "native"),
    [
        (
            "Demo Requested",
            {"formId": "f-9"},
            {"type": "form_submission", "form_kind": "demo_request", "form_id": "f-9"},
        ),
        (
            "Form Submitted",
            {"form_kind": "contact_sales"},
            {"type": "form_submission", "form_kind": "contact_sales"},
        ),
        ("Form Submitted", {}, {"type": "form_submission", "form_kind": "gated_content"}),
        (
            "Trial Started",
            {"trial_plan_name": "pro"},
            {"type": "form_submission", "form_kind": "trial_signup"},
        ),
        ("Signed Up", {"type": "organic"}, {"type": "product_usage", "action": "signup"}),
        ("Invite Sent", {}, {"type": "product_usage", "action": "invited_teammate"}),
        (
            "Content Downloaded",
            {"assetId": "roi-calc", "asset_type": "calculator", "funnelStage": "bottom"},
            {
                "type": "content_download",
                "asset_id": "roi-calc",
                "asset_type": "calculator",
                "funnel_stage": "bottom",
            },
        ),
        (
            "Webinar Attended",
            {"webinar_id": "w-1", "duration_minutes": 42},
            {"type": "webinar", "action": "attended", "webinar_id": "w-1", "minutes": 42},
        ),
        ("Unsubscribed", {}, {"type": "email_unsubscribe"}),
        ("Email Marked as Spam", {}, {"type": "email_spam_report"}),
        (
            "Live Chat Conversation Started",
            {"conversation_id": "c-1"},
            {"type": "chat", "action": "started", "chat_id": "c-1"},
        ),
        (
            "Product Added",
            {"product_id": "p-1", "price": 49.0, "currency": "EUR"},
            {
                "type": "commerce",
                "action": "added_to_cart",
                "product_id": "p-1",
                "value": 49.0,
                "currency": "EUR",
            },
        ),
        (
            "Booth Visited",
            {"eventName": "SaaStr Europa", "event_kind": "trade_show"},
            {
                "type": "offline_event",
                "action": "visited_booth",
                "event_name": "SaaStr Europa",
                "event_kind": "trade_show",
            },
        ),
    ],
)
def test_shipped_track_names(name: str, properties: dict, native: dict) -> None:
    message = {
        "type": "track",
        "event": name,
        "messageId": "t-2",
        "timestamp": "2026-11-02T13:00:00Z",
        "userId": "u-5",
        "properties": properties,
    }
    assert mapped(message) == parse_event(
        {"event_id": "t-2", "occurred_at": "2026-11-02T13:00:00Z", "lead_id": "u-5", **native}
    )


def test_an_unmapped_track_and_a_screen_are_ignored_not_rejected() -> None:
    track = {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "t-3",
        "timestamp": "2026-11-02T13:00:00Z",
        "anonymousId": "a-1",
    }
    assert mapped(track) == Ignored("track", "Product Viewed")
    assert mapped(track).label == "track:Product Viewed"
    screen = {**track, "type": "screen", "name": "Home"}
    assert mapped(screen) == Ignored("screen", "Home")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"messageId": None}, "messageId"),
        ({"timestamp": None, "originalTimestamp": None}, "needs a timestamp"),
        ({"userId": "", "anonymousId": ""}, "needs a userId, an anonymousId"),
        ({"timestamp": "2026-11-02T10:00:00"}, "timezone"),
        ({"event": ""}, "event"),
        ({"properties": {"form_kind": "carrier pigeon"}}, "form_kind"),
    ],
)
def test_malformed_messages_are_rejected_with_the_reason(change: dict, error: str) -> None:
    message = {
        "type": "track",
        "event": "Form Submitted",
        "messageId": "t-4",
        "timestamp": "2026-11-02T13:00:00Z",
        "userId": "u-1",
        **change,
    }
    message = {k: v for k, v in message.items() if v is not None}
    out = mapped(message)
    assert isinstance(out, Rejected)
    assert error in out.error


def test_the_boundary_decodes_segment_bytes_and_dead_letters_the_malformed() -> None:
    raw = json.dumps(RUDDER_PAGE).encode()
    assert decode(raw).type == "page_view"  # type: ignore[union-attr]
    ignored = decode(
        b'{"type":"track","event":"X","messageId":"m","userId":"u",'
        b'"timestamp":"2026-11-02T10:00:00Z"}'
    )
    assert isinstance(ignored, Ignored)
    bad = decode(b'{"type":"identify","userId":"u"}', topic="rudder-events", offset=7)
    assert isinstance(bad, DeadLetter)
    assert (bad.reason, bad.topic, bad.offset) == ("invalid", "rudder-events", 7)
    assert "messageId: Field required" in bad.error
    assert decode(b'{"type": "telepathy"}').reason == "unknown_type"  # type: ignore[union-attr]


def test_a_custom_mapping_replaces_the_defaults(tmp_path: Any) -> None:
    path = tmp_path / "tracks.yaml"
    path.write_text(
        'version: "mine"\ntracks:\n  Pricing Calculator Used:\n    type: content_download\n'
        "    set: {asset_id: calc, funnel_stage: bottom}\n"
    )
    tracks = load_tracks(path)
    message = {
        "type": "track",
        "event": "Pricing Calculator Used",
        "messageId": "c-1",
        "timestamp": "2026-11-02T13:00:00Z",
        "userId": "u-1",
    }
    assert from_segment(message, tracks).funnel_stage == "bottom"  # type: ignore[union-attr]
    assert from_segment({**message, "event": "Email Opened"}, tracks) == Ignored(
        "track", "Email Opened"
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("version: x\ntracks: {A: {type: page_viewz}}", "tracks.A.type"),
        ("version: x\ntracks: {A: {type: webinar, set: {actionn: attended}}}", "'actionn' is not"),
        ("version: x\ntracks: {A: {type: identify}}", "not a type a track can map to"),
        ("version: [", "not YAML"),
    ],
)
def test_a_bad_mapping_file_is_one_clear_error(text: str, error: str) -> None:
    with pytest.raises(LeadstreamError, match=r"t\.yaml") as info:
        parse_tracks(text, source="t.yaml")
    assert error in str(info.value)


def test_the_published_json_schema_accepts_what_pipelines_send() -> None:
    import jsonschema

    from schemas.generate import rendered

    schema = json.loads(rendered()["segment_event.json"])
    jsonschema.validate(RUDDER_PAGE, schema)
    jsonschema.validate(SEGMENT_IDENTIFY, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**RUDDER_PAGE, "messageId": None}, schema)


@pytest.mark.parametrize("flavour", ["rudderstack", "segment"])
def test_a_journey_means_its_native_twin_message_by_message(flavour: Any) -> None:
    from tests.segment_cases import journey

    trip = journey("j", flavour)
    mapped_events = [mapped(m) for m in trip.foreign]
    assert mapped_events[: len(trip.native)] == [parse_event(n) for n in trip.native]
    assert isinstance(mapped_events[-2], Ignored)
    assert isinstance(mapped_events[-1], Rejected)


@pytest.mark.parametrize("flavour", ["rudderstack", "segment"])
def test_simulate_reads_segment_lines_and_gives_the_native_transitions(
    flavour: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from stream_app.commands.cli import main
    from tests.factories import DEFAULT_RULES
    from tests.segment_cases import journey

    trip = journey("s", flavour)
    outputs = {}
    for name, lines in (("foreign", trip.foreign), ("native", trip.native)):
        source = tmp_path / f"{name}.jsonl"
        source.write_text("".join(json.dumps(x) + "\n" for x in lines))
        out = tmp_path / f"{name}-out.jsonl"
        argv = ["simulate", "--quiet", "--rules", str(DEFAULT_RULES), str(source)]
        argv += ["--out", str(out)]
        assert main(argv) == 0
        outputs[name] = (out.read_text(), capsys.readouterr().err)
    assert outputs["foreign"][0] == outputs["native"][0]
    assert [json.loads(x)["to_stage"] for x in outputs["native"][0].splitlines()] == ["mql", "sql"]
    err = outputs["foreign"][1]
    assert "6 events (1 bad lines" in err
    assert "line 8: invalid: segment track: messageId: Field required" in err
    assert "1 ignored (valid, but no rule uses them): track:Product Viewed x1" in err
