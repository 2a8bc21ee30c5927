"""The live pipeline's driver, run in memory over partitions, gives the offline replay's output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.events import parse_event
from stream_app.codec import decode_record, due_at_of, encode_record
from stream_app.messages import Record, Tick
from stream_app.scoring.engine import next_change_at
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.worker import pipeline
from stream_app.worker.pipeline import InMemoryPipeline, PartitionBatch, partition_of
from tests.factories import VP_PROFILE, ev
from tools.traffic import generate

#: The buyer's profile without the address (whose pseudonym a lead claims like a cookie:
#: these tests count the claims of the cookie only, or run one partition's batch alone).
NO_ADDRESS = {k: v for k, v in VP_PROFILE.items() if k != "email"}


def _subject(event: dict[str, Any]) -> bytes:
    return str(event.get("lead_id") or event.get("anonymous_id")).encode()


def _replayed(rules: Rules, events: list[dict[str, Any]]) -> tuple[list[Any], Replay]:
    replay = Replay(rules)
    out = []
    for event in events:
        out += replay.process(parse_event(json.dumps(event))).transitions
    return out, replay


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
def test_one_event_at_a_time_the_driver_equals_the_replay(rules: Rules, keyed: bool) -> None:
    events = list(generate(300, seed=5))
    live = InMemoryPipeline(rules, partitions=4)
    for n, event in enumerate(events):
        raw = json.dumps(event).encode()
        if keyed:
            live.feed(raw, key=_subject(event))
        else:
            live.feed(raw, partition=n % 4)  # spread as an unkeyed producer would
        live.run()  # until nothing is in flight: the input order is the order applied
    offline, replay = _replayed(rules, events)
    assert live.transitions == offline
    assert len(offline) > 50
    assert {s.key: s for s in live.leads()} == {s.key: s for s in replay.leads()}


def test_keyed_input_in_batches_gives_the_replays_transitions(rules: Rules) -> None:
    """Per subject, keyed input keeps its order; a lead holds its events while it claims."""
    events = list(generate(300, seed=6))
    live = InMemoryPipeline(rules, partitions=4, batch=200)
    for event in events:
        live.feed(json.dumps(event).encode(), key=_subject(event))
    live.run()
    offline, replay = _replayed(rules, events)
    by_lead = sorted(live.transitions, key=lambda t: (t.lead_id, t.sequence))
    assert by_lead == sorted(offline, key=lambda t: (t.lead_id, t.sequence))
    assert {s.key: s for s in live.leads()} == {s.key: s for s in replay.leads()}


def _ids_on(partitions: int, same: bool) -> tuple[str, str]:
    lead = "L1"
    for n in range(100):
        anon = f"c{n}"
        if (partition_of(anon, partitions) == partition_of(lead, partitions)) == same:
            return lead, anon
    raise AssertionError("no such id")


@pytest.mark.parametrize("same", [True, False], ids=["same-partition", "other-partition"])
def test_a_claim_merges_the_anonymous_history_once(rules: Rules, same: bool) -> None:
    lead, anon = _ids_on(4, same)
    live = InMemoryPipeline(rules, partitions=4)
    forwarded: list[str] = []
    live.on_outputs = lambda p, out: forwarded.extend(m.kind for _, m, _ in out.forwards)
    for event in [
        ev("page_view", anonymous_id=anon, path="/pricing"),
        ev("identify", hours=1, lead_id=lead, anonymous_id=anon, traits=NO_ADDRESS),
        ev("page_view", hours=2, anonymous_id=anon, path="/blog/a"),
        ev("page_view", hours=3, lead_id=lead, anonymous_id=anon, path="/blog/b"),
    ]:
        live.feed(event.model_dump_json().encode(), key=(event.lead_id or anon).encode())
        live.run()
    assert [(t.lead_id, t.to_stage) for t in live.transitions] == [(lead, "mql")]
    tombstone = live.record(f"anon:{anon}")
    assert tombstone is not None and tombstone.state.merged_into == lead
    record = live.record(lead)
    assert record is not None and record.state.merged_anonymous == [anon]
    assert record.awaiting == [] and record.held == []
    # a claim and its answer only when the two live apart, and the anonymous event
    # that came after the merge goes to the lead; the last event carries both ids: no claim
    assert forwarded == ([] if same else ["claim", "absorb", "event"])


def test_the_first_link_wins(rules: Rules) -> None:
    live = InMemoryPipeline(rules, partitions=4)
    for event in [
        ev("page_view", anonymous_id="c", path="/pricing"),
        ev("identify", hours=1, lead_id="L1", anonymous_id="c"),
        ev("identify", hours=2, lead_id="L2", anonymous_id="c"),
        ev("page_view", hours=3, lead_id="L2", anonymous_id="c", path="/product"),
    ]:
        live.feed(event.model_dump_json().encode(), key=(event.lead_id or "c").encode())
        live.run()
    first, second = live.record("L1"), live.record("L2")
    assert first is not None and second is not None
    assert first.state.merged_anonymous == ["c"]
    assert second.state.merged_anonymous == [] and second.linked == ["c"]
    assert second.held == [] and second.state.newest_at is not None  # both events applied


def test_a_batch_processed_again_on_the_old_records_gives_the_same_transitions(
    rules: Rules,
) -> None:
    """A crash before the records are written: the batch comes again, and says the same."""
    messages = [
        ev("profile_update", lead_id="L1", **NO_ADDRESS),
        ev("page_view", hours=1, lead_id="L1", path="/pricing"),
    ]
    store: dict[str, bytes] = {}

    def run() -> pipeline.Outputs:
        partition = partition_of("L1", 4)
        driver = PartitionBatch(partition, 4, rules, lambda k: decode_record(store.get(k)))
        for n, event in enumerate(messages):
            driver.input(event.model_dump_json().encode(), topic="t", offset=n, key=b"L1")
        return driver.out

    first, again = run(), run()
    assert [t.to_stage for t in first.transitions] == ["mql"]
    assert again.transitions == first.transitions  # same transition, same id
    store.update({k: encode_record(r) for k, r in first.records.items()})  # written
    after = run()
    assert after.transitions == []  # the records know the events: duplicates
    assert after.counts["events_scored_total|status=duplicate"] == 2
    assert list(after.updates) == ["L1"]  # the projection is repaired too


def test_a_batch_sends_the_newest_score_update_per_lead(rules: Rules) -> None:
    driver = PartitionBatch(0, 1, rules, lambda k: None)
    for n in range(5):
        event = ev("page_view", hours=n, lead_id="L1", path="/blog/a", event_id=f"e{n}")
        driver.input(event.model_dump_json().encode(), topic="t", offset=n, key=b"L1")
    assert [(k, u.event_id) for k, u in driver.out.updates.items()] == [("L1", "e4")]
    assert list(driver.out.records) == ["L1"]  # one record write for five events


def test_dead_letters_are_collected_not_raised(rules: Rules) -> None:
    live = InMemoryPipeline(rules)
    live.feed(b"{not json", topic="page_views", partition=1)
    live.run()
    assert [(d.reason, d.topic, d.partition) for d in live.dead_letters] == [
        ("not_json", "page_views", 1)
    ]


def test_a_failure_on_one_message_is_undone_and_dead_lettered(
    rules: Rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pipeline.apply_event

    def flaky(state: Any, event: Any, rules: Rules, *, key: str | None = None) -> Any:
        if event.event_id == "boom":
            raise RuntimeError("a bug")
        return real(state, event, rules, key=key)

    monkeypatch.setattr(pipeline, "apply_event", flaky)
    driver = PartitionBatch(0, 1, rules, lambda k: None)
    good = ev("profile_update", lead_id="L1", event_id="ok", **VP_PROFILE)
    bad = ev("page_view", hours=1, lead_id="L1", path="/pricing", event_id="boom")
    for n, event in enumerate([good, bad]):
        driver.input(event.model_dump_json().encode(), topic="t", offset=n, key=b"L1")
    assert [(k, letter.reason, letter.offset) for k, letter in driver.out.dead_letters] == [
        (b"L1", "processing_error", 1)
    ]
    assert driver.out.updates["L1"].event_id == "ok"  # the failed event left nothing behind
    assert driver.out.records["L1"].state.newest_at == good.occurred_at.timestamp()
    assert len(driver.errors) == 1


def test_a_decay_tick_publishes_the_decayed_score(rules: Rules) -> None:
    store: dict[str, bytes] = {}
    driver = PartitionBatch(0, 1, rules, lambda k: decode_record(store.get(k)))
    for n, event in enumerate(
        [
            ev("profile_update", lead_id="L1", event_id="e-1", **VP_PROFILE),
            ev("page_view", hours=1, lead_id="L1", path="/pricing", event_id="e-2"),
        ]
    ):
        driver.input(event.model_dump_json().encode(), topic="t", offset=n, key=b"L1")
    assert driver.out.updates["L1"].event_id == "e-2"  # names the event it applied
    record = driver.out.records["L1"]
    store["L1"] = encode_record(record)
    assert record.state.due_at is not None
    tick = PartitionBatch(0, 1, rules, lambda k: decode_record(store.get(k)))
    # due_at is the earlier MQL SLA deadline; the demotion comes later
    tick.message(Tick(to="L1", now=next_change_at(record.state, rules) + 86400))
    assert [t.to_stage for t in tick.out.transitions] == ["recycled"]
    assert [b.stage for b in tick.out.breaches] == ["mql"]  # nobody picked it up first
    update = tick.out.updates["L1"]
    assert update.stage == "recycled" and update.event_id is None  # decay, no event
    assert update.scores.engagement < 5  # decayed, not the 20 of the last event


def test_the_due_time_read_from_raw_bytes_is_the_decoded_records(rules: Rules) -> None:
    live = InMemoryPipeline(rules)
    for event in generate(200, seed=9):
        live.feed(json.dumps(event).encode(), key=_subject(event))
    live.run()
    records = [decode_record(raw) for raw in live.records.values()]
    dues = [r.state.due_at for r in records if r is not None]
    assert any(d is not None for d in dues) and any(d is None for d in dues)
    for raw in live.records.values():
        record = decode_record(raw)
        assert record is not None and due_at_of(raw) == record.state.due_at
    # a profile field that happens to be called due_at: two matches, so the record is decoded
    record = next(r for r in records if r is not None and r.state.due_at is not None)
    record.state.profile["due_at"] = 7
    assert due_at_of(encode_record(record)) == record.state.due_at


def test_a_record_round_trips_through_its_bytes(rules: Rules) -> None:
    record = Record(
        state=parse_state(rules),
        awaiting=["c"],
        linked=["d"],
        held=[ev("page_view", lead_id="L1", path="/x")],
    )
    assert decode_record(encode_record(record)) == record


def parse_state(rules: Rules) -> Any:
    from stream_app.scoring.engine import apply_event

    return apply_event(None, ev("profile_update", lead_id="L1", **VP_PROFILE), rules).state


def test_an_event_from_the_future_is_a_dead_letter_and_its_lead_scores_like_its_twin(
    rules: Rules,
) -> None:
    """Issue 25: a page view dated 2099 left its lead at "lead" while its twin reached SQL."""
    arrived = ev("page_view", lead_id="x", path="/").occurred_at.timestamp() + 3600
    driver = PartitionBatch(0, 1, rules, lambda k: None)
    poison = ev("page_view", lead_id="A", path="/pricing", event_id="A-2099")
    poison = poison.model_copy(update={"occurred_at": poison.occurred_at.replace(year=2099)})
    driver.input(
        poison.model_dump_json().encode(), topic="t", offset=0, key=b"A", timestamp=arrived
    )
    offset = 1
    for lead in ("A", "B"):
        for event in (
            ev("profile_update", lead_id=lead, event_id=f"{lead}-1", **VP_PROFILE),
            ev("page_view", hours=0.2, lead_id=lead, path="/pricing", event_id=f"{lead}-2"),
            ev(
                "form_submission",
                hours=0.5,
                lead_id=lead,
                form_kind="demo_request",
                event_id=f"{lead}-3",
            ),
        ):
            raw = event.model_dump_json().encode()
            driver.input(raw, topic="t", offset=offset, key=lead.encode(), timestamp=arrived)
            offset += 1
    out = driver.out
    assert [(key, letter.reason, letter.offset) for key, letter in out.dead_letters] == [
        (b"A", "future_event", 0)
    ]
    assert out.counts["dead_letters_total|reason=future_event"] == 1
    assert out.counts["events_scored_total|status=late"] == 0
    a, b = out.updates["A"], out.updates["B"]
    assert a.stage == b.stage == "sql"
    assert a.scores == b.scores
