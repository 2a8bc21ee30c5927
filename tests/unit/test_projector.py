"""The projection consumer's pure parts: newest version per lead, decoding a fetch."""

from __future__ import annotations

import logging

import pytest
from aiokafka import ConsumerRecord

from schemas.transitions import ScoreUpdate
from stream_app.scoring.engine import advance
from stream_app.scoring.replay import Replay
from stream_app.serve.projector import (
    ErasureFence,
    decode_batch,
    newest_per_lead,
    projected_topics,
)
from stream_app.topics import TopicNames
from stream_app.worker.pipeline import InMemoryPipeline
from tests.factories import VP_PROFILE, default_rules, ev


def updates_of_one_lead() -> list[ScoreUpdate]:
    """Real score updates (versions 1, 2, 3) of one lead, from the in-memory pipeline."""
    pipeline = InMemoryPipeline(default_rules())
    pipeline.feed(
        ev("profile_update", lead_id="L1", **VP_PROFILE).model_dump_json().encode(),
        key=b"L1",
        topic="profile_updates",
    )
    pipeline.run()
    for day in (1, 2):
        event = ev("page_view", day=day, lead_id="L1", path="/pricing")
        pipeline.feed(event.model_dump_json().encode(), key=b"L1")
        pipeline.run()  # one batch per event: one update each
    return pipeline.updates


def record(
    topic: str, offset: int, value: bytes | None, key: bytes | None = None, timestamp: int = 0
) -> ConsumerRecord[bytes, bytes]:
    size = len(value) if value is not None else 0
    return ConsumerRecord(topic, 0, offset, timestamp, 0, key, value, None, 0, size, [])


def test_only_the_highest_version_per_lead_is_kept_whatever_the_order() -> None:
    updates = updates_of_one_lead()
    assert [u.version for u in updates] == [1, 2, 3]
    other = updates[0].model_copy(update={"lead_id": "L2"})
    kept = newest_per_lead([updates[2], updates[0], other, updates[1]])
    assert {(u.lead_id, u.version) for u in kept} == {("L1", 3), ("L2", 1)}


def test_a_fetch_splits_into_updates_and_transitions_and_skips_what_does_not_decode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    update = updates_of_one_lead()[0]
    records = [
        record("score_updates", 0, update.model_dump_json().encode()),
        record("score_updates", 1, b'{"not": "an update"}'),
        record("lead_stage_transitions", 7, b"\xff"),
    ]
    with caplog.at_level(logging.ERROR, logger="leadstream.projector"):
        fetched = decode_batch(records, "score_updates")
    assert fetched.updates == [update]
    assert fetched.transitions == [] and fetched.erased == {}
    assert "score_updates[0]@1" in caplog.text
    assert "lead_stage_transitions[0]@7" in caplog.text


def test_a_tombstone_erases_the_updates_before_it_not_those_after() -> None:
    v1, v2, v3 = updates_of_one_lead()
    reborn = v1  # a new life starts at version 1 again
    other = v2.model_copy(update={"lead_id": "L2"})
    as_record = lambda n, u: record("u", n, u.model_dump_json().encode())  # noqa: E731
    records = [
        as_record(0, v2),
        as_record(1, other),
        as_record(2, v3),
        record("u", 3, None, key=b"L1", timestamp=5000),
        as_record(4, reborn),
    ]
    fetched = decode_batch(records, "u")
    assert fetched.erased == {"L1": 5000}
    assert fetched.updates == [other, reborn]
    assert newest_per_lead(fetched.updates) == [other, reborn]  # v3 would have won


def test_the_fence_keeps_out_an_erased_leads_transitions_from_before_its_tombstone() -> None:
    fence = ErasureFence(limit=2)
    fence.note("L1", 5000)
    assert not fence.admits("L1", 4999) and not fence.admits("L1", 5000)
    assert fence.admits("L1", 5001) and fence.admits("L2", 1)
    fence.note("L2", 10)
    fence.note("L3", 10)  # over the limit: the oldest goes
    assert fence.admits("L1", 1)


def test_a_fetch_keeps_sla_breaches_apart_from_transitions() -> None:
    rules = default_rules()
    replay = Replay(rules)
    replay.process(ev("profile_update", lead_id="w", **VP_PROFILE))
    replay.process(ev("form_submission", hours=1, lead_id="w", form_kind="demo_request"))
    state = replay.states["w"]
    (breach,) = advance(state, rules, (state.newest_at or 0.0) + 30 * 86400).breaches
    records = [record("lead_sla_breaches", 3, breach.model_dump_json().encode(), timestamp=9)]
    fetched = decode_batch(records, "score_updates", "lead_sla_breaches")
    assert fetched.breaches == [(breach, 9)]
    assert fetched.transitions == [] and fetched.updates == []
    assert projected_topics(TopicNames("p.")) == [
        "p.lead_score_updates",
        "p.lead_stage_transitions",
        "p.lead_sla_breaches",
    ]
