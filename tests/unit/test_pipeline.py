"""The live pipeline's stages, run in memory, give exactly the offline replay's transitions."""

from __future__ import annotations

import json

from schemas.events import parse_event
from stream_app.pipeline import Envelope, InMemoryPipeline, Record, due_at_of, dump_record, score
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.traffic import generate
from tests.factories import VP_PROFILE, ev


def test_the_three_stages_match_the_replay_on_generated_traffic(rules: Rules) -> None:
    events = [json.dumps(e).encode() for e in generate(400, seed=5)]
    live = InMemoryPipeline(rules)
    replay = Replay(rules)
    offline = []
    for raw in events:
        live.feed(raw)
        step = replay.process(parse_event(raw))
        offline += step.transitions
    assert live.transitions == offline
    assert len(offline) > 50
    states = {s.key: s for s in live.leads()}
    assert states == {s.key: s for s in replay.leads()}


def test_release_and_absorb_merge_the_anonymous_history_once(rules: Rules) -> None:
    live = InMemoryPipeline(rules)
    for event in [
        ev("page_view", anonymous_id="c", path="/pricing"),
        ev("identify", hours=1, lead_id="L1", anonymous_id="c", traits=VP_PROFILE),
        ev("page_view", hours=2, anonymous_id="c", path="/blog/a"),
    ]:
        live.feed(event.model_dump_json().encode())
    assert [(t.lead_id, t.to_stage) for t in live.transitions] == [("L1", "mql")]
    assert live.links == {"c": "L1"}
    assert live.records["anon:c"].state.merged_into == "L1"
    assert live.records["L1"].state.merged_anonymous == ["c"]


def test_a_crash_left_outbox_is_resent_when_the_event_comes_again(rules: Rules) -> None:
    profile = ev("profile_update", lead_id="L1", **VP_PROFILE)
    pricing = ev("page_view", hours=1, lead_id="L1", path="/pricing")
    first = score("L1", Envelope(kind="event", event=profile), None, rules)
    assert first.record is not None
    second = score("L1", Envelope(kind="event", event=pricing), first.record, rules)
    assert [t.to_stage for t in second.transitions] == ["mql"]
    # The worker wrote the record with its outbox, then died before the send.
    assert second.record is not None and second.record.outbox == second.transitions
    crashed = Record.model_validate_json(second.record.model_dump_json())
    again = score("L1", Envelope(kind="event", event=pricing), crashed, rules)
    assert again.status == "duplicate"
    assert again.transitions == []
    assert again.resend == second.transitions  # same transition, same id
    assert again.update is not None  # the projection is repaired too


def test_dead_letters_are_collected_not_raised(rules: Rules) -> None:
    live = InMemoryPipeline(rules)
    live.feed(b"{not json", topic="page_views", offset=7)
    assert [(d.reason, d.topic, d.offset) for d in live.dead_letters] == [
        ("not_json", "page_views", 7)
    ]


def test_a_decay_tick_publishes_the_decayed_score(rules: Rules) -> None:
    first = score("L1", Envelope(kind="event", event=ev("profile_update", lead_id="L1",
                                                         **VP_PROFILE)), None, rules)  # fmt: skip
    pricing = ev("page_view", hours=1, lead_id="L1", path="/pricing")
    second = score("L1", Envelope(kind="event", event=pricing), first.record, rules)
    assert second.record is not None and second.record.state.due_at is not None
    later = second.record.state.due_at + 86400
    tick = score("L1", Envelope(kind="tick", now=later), Record(state=second.record.state), rules)
    assert [t.to_stage for t in tick.transitions] == ["recycled"]
    assert tick.update is not None
    assert tick.update.stage == "recycled"
    assert tick.update.scores.engagement < 5  # decayed, not the 20 of the last event


def test_a_score_update_names_the_event_it_applied_and_none_for_decay(rules: Rules) -> None:
    profile = ev("profile_update", lead_id="L9", event_id="e-1", **VP_PROFILE)
    first = score("L9", Envelope(kind="event", event=profile), None, rules)
    assert first.update is not None and first.update.event_id == "e-1"
    demo = ev("form_submission", hours=1, lead_id="L9", form_kind="demo_request", event_id="e-2")
    raised = score("L9", Envelope(kind="event", event=demo), first.record, rules)
    assert [t.to_stage for t in raised.transitions] == ["sql"]
    assert raised.update is not None and raised.update.event_id == "e-2"
    again = score("L9", Envelope(kind="event", event=demo), raised.record, rules)
    assert again.status == "duplicate"
    assert again.update is not None and again.update.event_id == "e-2"  # names the redelivery
    assert raised.record is not None and raised.record.state.newest_at is not None
    later = raised.record.state.newest_at + 400 * 86_400
    tick = score("L9", Envelope(kind="tick", now=later), raised.record, rules)
    assert [t.to_stage for t in tick.transitions] == ["recycled"]
    assert tick.update is not None and tick.update.event_id is None  # decay, no event


def test_the_due_time_read_from_raw_bytes_is_the_decoded_records(rules: Rules) -> None:
    live = InMemoryPipeline(rules)
    for raw in (json.dumps(e).encode() for e in generate(200, seed=9)):
        live.feed(raw)
    dues = [r.state.due_at for r in live.records.values()]
    assert any(d is not None for d in dues) and any(d is None for d in dues)
    for record in live.records.values():
        raw = dump_record(record)
        assert due_at_of(raw) == record.state.due_at
    # a profile field that happens to be called due_at: two matches, so the record is decoded
    record = next(r for r in live.records.values() if r.state.due_at is not None)
    record.state.profile["due_at"] = 7
    assert due_at_of(dump_record(record)) == record.state.due_at
