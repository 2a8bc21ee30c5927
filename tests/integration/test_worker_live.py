"""The worker on the real stack gives exactly what the offline replay gives.

One worker process (fresh topics, group and RocksDB directory) serves the
module; events are fed in lock-step (see ``Lockstep``), so per-lead order is
the input order and the determinism contract applies in full: the same
transitions, field for field, ids included.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
import redis.asyncio as aioredis

from schemas.dead_letter import DeadLetter
from schemas.events import parse_event
from schemas.transitions import StageTransition
from stream_app.scoring.engine import score_update
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.serve.stores.projection import RedisProjection
from tests.factories import VP_PROFILE, at
from tests.integration.live import Lockstep, WorkerProcess, collect
from tools.errors import LaunchError
from tools.traffic import generate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(uuid.uuid4().hex[:8], tmp_path_factory.mktemp("worker"))
    process.start()
    yield process
    process.stop()
    assert "Traceback" not in process.log_text(), process.log_text()[-4000:]
    cleanup = redis_sync.Redis.from_url(
        process.env.get("LEADSTREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    keys = list(cleanup.scan_iter(match=process.env["LEADSTREAM_REDIS_KEY_PREFIX"] + "*"))
    if keys:
        cleanup.delete(*keys)
    cleanup.close()


def oracle(rules: Rules, events: list[dict]) -> list[StageTransition]:
    replay = Replay(rules)
    out: list[StageTransition] = []
    for event in events:
        out += replay.process(parse_event(json.dumps(event))).transitions
    return out


def scripted(prefix: str) -> list[dict]:
    """An anonymous visitor who identifies, a demo request, a poor-fit lead, a student."""

    def event(kind: str, n: int, hours: float, **fields: object) -> dict:
        return {
            "type": kind,
            "event_id": f"{prefix}-{n}",
            "occurred_at": at(0, hours).isoformat(),
            **fields,
        }

    vp, demo, poor, student, anon = (f"{prefix}-{x}" for x in ("vp", "demo", "poor", "stu", "c"))
    return [
        event("page_view", 1, 0, anonymous_id=anon, path="/pricing", session_id="s1"),
        event("page_view", 2, 1, anonymous_id=anon, path="/product", session_id="s2"),
        event("identify", 3, 2, lead_id=vp, anonymous_id=anon, traits=VP_PROFILE),
        event("page_view", 4, 3, anonymous_id=anon, path="/blog/a", session_id="s3"),
        event("profile_update", 5, 0, lead_id=demo, **VP_PROFILE),
        event("form_submission", 6, 1, lead_id=demo, form_kind="demo_request"),
        event("profile_update", 7, 0, lead_id=poor, email="p@gmail.com", company_size=2),
        event("form_submission", 8, 1, lead_id=poor, form_kind="demo_request"),
        event(
            "identify",
            9,
            0,
            lead_id=student,
            anonymous_id=f"{prefix}-c2",
            traits={"email": "s@state.edu", "country": "US"},
        ),
        event("page_view", 10, 1, lead_id=student, path="/pricing"),
        event("sales_feedback", 11, 5, lead_id=demo, outcome="accepted"),
    ]


async def test_live_transitions_and_projection_equal_the_offline_replay(
    worker: WorkerProcess, kafka_bootstrap: str, rules: Rules, redis_client: aioredis.Redis
) -> None:
    prefix = uuid.uuid4().hex[:6]
    events = scripted(prefix) + list(generate(25, seed=4, id_prefix=f"{prefix}g"))
    expected = oracle(rules, events)
    assert len(expected) >= 8

    async with Lockstep(kafka_bootstrap, worker) as feed:
        for event in events:
            await feed.feed(event)
    raw = await collect(kafka_bootstrap, [worker.names.transitions], until=len(expected))
    live = [StageTransition.model_validate_json(r) for r in raw]
    mine = [t for t in live if t.lead_id.startswith(prefix)]

    def by_lead(items: list[StageTransition]) -> dict[str, list[StageTransition]]:
        out: dict[str, list[StageTransition]] = {}
        for t in items:
            out.setdefault(t.lead_id, []).append(t)
        return out

    assert by_lead(mine) == by_lead(expected)
    vp = [t for t in mine if t.lead_id == f"{prefix}-vp"]
    assert [(t.from_stage, t.to_stage, t.triggering_event_id) for t in vp] == [
        ("lead", "mql", f"{prefix}-3")  # the identify merged the browsing, once
    ]

    # The Redis projection the worker wrote equals the replay's final scores.
    replay = Replay(rules)
    for event in events:
        replay.process(parse_event(json.dumps(event)))
    projection = RedisProjection(redis_client, worker.env["LEADSTREAM_REDIS_KEY_PREFIX"])
    leads = [s for s in replay.leads() if s.key.startswith(prefix)]
    for _ in range(100):  # the projection consumer trails the scoring a little
        views = [await projection.lead(s.key) for s in leads]
        if all(v and v["version"] == s.version for v, s in zip(views, leads, strict=True)):
            break
        await asyncio.sleep(0.2)
    for view, state in zip(views, leads, strict=True):
        expected_update = score_update(state, rules)
        assert view is not None, state.key
        assert (view["stage"], view["scores"]) == (
            expected_update.stage,
            expected_update.scores.model_dump(),
        ), state.key


async def test_bad_messages_land_in_the_dead_letter_topic_with_reasons(
    worker: WorkerProcess, kafka_bootstrap: str, tmp_path: Path
) -> None:
    bad = {
        b"not json at all": "not_json",
        b'{"type": "page_view", "event_id": "x"}': "invalid",
        b'{"type": "mind_reading", "event_id": "x"}': "unknown_type",
        b"\xff\xfe\x00": "not_utf8",
        b'{"a":' * 3000 + b"1" + b"}" * 3000: "too_deep",
        b'{"type": "page_view", "path": "' + b"x" * 300_000 + b'"}': "too_large",
    }
    async with Lockstep(kafka_bootstrap, worker) as feed:
        for n, value in enumerate(bad):
            await feed.send_raw("form_submissions", value, key=f"bad-{n}".encode())
    raw = await collect(kafka_bootstrap, [worker.names.dead_letters], until=len(bad))
    letters = [DeadLetter.model_validate_json(r) for r in raw]
    got = {bytes(d.raw[:20]): d.reason for d in letters if d.key and d.key.startswith("bad-")}
    assert got == {value[:20]: reason for value, reason in bad.items()}
    for letter in letters:
        assert letter.topic == worker.names.name("form_submissions")
        assert letter.partition is not None and letter.offset is not None


async def test_subject_keyed_traffic_at_full_speed_gives_the_replays_transitions(
    worker: WorkerProcess, kafka_bootstrap: str, rules: Rules
) -> None:
    """No lock-step: everything produced at once to one topic, keyed by subject, as
    RudderStack writes it.

    Per subject the order is the input order (one topic partition), and a lead
    holds its events while it claims an anonymous visitor, so per lead the
    transitions equal the replay's, ids included. (Across topics Kafka keeps
    no order: a subject's events split over several input topics may be
    applied in another order than the replay's.)
    """
    prefix = uuid.uuid4().hex[:6]
    events = list(generate(120, seed=11, id_prefix=f"{prefix}g"))
    expected = oracle(rules, events)
    assert len(expected) >= 20
    async with Lockstep(kafka_bootstrap, worker) as feed:
        for event in events:
            key = str(event.get("lead_id") or event.get("anonymous_id")).encode()
            await feed.producer.send(
                worker.names.name("page_views"), key=key, value=json.dumps(event).encode()
            )
        await feed.producer.flush()
    raw = await collect(
        kafka_bootstrap, [worker.names.transitions], until=len(expected), limit_s=120
    )
    mine = [
        t
        for t in (StageTransition.model_validate_json(r) for r in raw)
        if t.lead_id.startswith(f"{prefix}g")
    ]

    def by_lead(items: list[StageTransition]) -> list[StageTransition]:
        return sorted(items, key=lambda t: (t.lead_id, t.sequence))

    assert by_lead(mine) == by_lead(expected)


async def test_a_worker_refuses_input_topics_with_another_partition_count(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A subject's record lives on murmur2(id) % partitions of every topic read: a topic
    with another count would scatter it, so the worker stops with the reason."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    process = WorkerProcess(uuid.uuid4().hex[:8], tmp_path)  # 3 partitions
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(process.names.name("page_views"), 2, 1)])
    finally:
        await admin.close()
    try:
        with pytest.raises(LaunchError, match="exited with status 2 before it was ready") as failed:
            process.start(timeout=60)
    finally:
        process.stop()
    assert "LEADSTREAM_TOPIC_PARTITIONS is 3" in str(failed.value)
    assert "page_views has 2" in str(failed.value)
