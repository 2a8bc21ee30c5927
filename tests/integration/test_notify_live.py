"""``notify`` on the real broker, posting to a real HTTP server on loopback that records.

The transitions are produced onto a fresh transitions topic as the worker
writes them (keyed by lead id), some twice (a worker's re-publication after
its crash) and some to stages nobody asked for. The notifier runs as a
process (``python -m stream_app notify``) and is killed with SIGKILL mid-burst:
every wanted transition arrives, and at most the one post that was in flight
at the kill arrives twice.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.transitions import StageTransition
from tests.unit.test_notify import transition
from tools.launch import Process, leadstream
from tools.sink import Sink

pytestmark = pytest.mark.integration


def notifier_process(run: str, tmp: Path, url: str, **env: str) -> Process:
    """``python -m stream_app notify`` on the run's transitions topic (``tools.launch``:
    ready once it logged its partition assignment; it serves nothing over HTTP)."""
    return leadstream(
        "notify",
        log=tmp / f"notify-{run}.log",
        env={
            "LEADSTREAM_TOPIC_PREFIX": f"n{run}.",
            "LEADSTREAM_APP_ID": f"ls-{run}",
            "LEADSTREAM_NOTIFY_URL": url,
            "LEADSTREAM_NOTIFY_DIR": str(tmp / "notify"),
            **env,
        },
    )


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = Sink()
    await server.start()
    yield server
    await server.stop()


async def publish(bootstrap: str, topic: str, transitions: list[StageTransition]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for t in transitions:
            await producer.send(topic, key=t.lead_id.encode(), value=t.model_dump_json().encode())
        await producer.flush()
    finally:
        await producer.stop()


async def until(condition: Any, limit_s: float, what: str, log: Process) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {limit_s}s; log:\n{log.log_text()[-3000:]}")
        await asyncio.sleep(0.1)


async def test_a_notifier_killed_mid_burst_loses_nothing_and_repeats_at_most_one_post(
    kafka_bootstrap: str, sink: Sink, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    wanted = [
        transition(n, to_stage="sql" if n % 2 else "mql", lead=f"l{n % 7}") for n in range(1, 41)
    ]
    unwanted = [transition(100 + n, to_stage="recycled") for n in range(3)]
    burst = wanted[:20] + unwanted + wanted[5:8] + wanted[20:]  # three re-published
    sink.delay = 0.05
    notifier = notifier_process(
        run,
        tmp_path,
        sink.url,
        LEADSTREAM_NOTIFY_KIND="webhook",
        LEADSTREAM_NOTIFY_MAX_PER_SECOND="40",
    )
    await publish(kafka_bootstrap, f"n{run}.lead_stage_transitions", burst)

    await notifier.start().wait_ready_async(60)
    await until(lambda: len(sink.delivered()) >= 12, 60, "12 posts", notifier)
    notifier.stop(signal.SIGKILL)
    killed_at = len(sink.delivered())
    assert killed_at < len(wanted), "the kill came too late to be mid-burst"
    await notifier.start().wait_ready_async(60)
    ids = {t.transition_id for t in wanted}

    def delivered_ids() -> Counter[str]:
        return Counter(r.headers["ce-id"] for r in sink.delivered())

    await until(lambda: set(delivered_ids()) >= ids, 90, "every transition", notifier)
    await asyncio.sleep(2)  # anything more would be a duplicate or an unwanted stage
    notifier.stop()
    got = delivered_ids()
    assert set(got) == ids  # no recycled ones, nothing lost
    repeated = {i: n for i, n in got.items() if n > 1}
    assert sum(repeated.values()) - len(repeated) <= 1, repeated
    for r in sink.delivered():
        body = StageTransition.model_validate_json(r.body)
        assert r.headers["ce-id"] == body.transition_id
        assert r.headers["ce-type"] == "dev.leadstream.stage_transition.v1"
    assert "Traceback" not in notifier.log_text()


async def test_slack_gets_digests_at_about_one_per_second_and_failed_posts_are_retried(
    kafka_bootstrap: str, sink: Sink, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    burst = [transition(n, lead=f"lead-{n:02d}") for n in range(1, 26)]
    sink.script = [(500, None), (429, 1.0)]  # Slack having a bad moment, then rate-limiting
    notifier = notifier_process(
        run,
        tmp_path,
        sink.url,
        LEADSTREAM_NOTIFY_KIND="slack",
        LEADSTREAM_NOTIFY_DIGEST_MAX="10",
        LEADSTREAM_NOTIFY_LINK_TEMPLATE="https://crm.example.com/l/{lead_id}",
    )
    await publish(kafka_bootstrap, f"n{run}.lead_stage_transitions", burst)
    await notifier.start().wait_ready_async(60)

    def leads_posted() -> Counter[str]:
        seen: Counter[str] = Counter()
        for r in sink.delivered():
            text = str(r.json()["blocks"])
            seen.update(t.lead_id for t in burst if f"|{t.lead_id}>" in text)
        return seen

    try:
        await until(lambda: len(leads_posted()) == len(burst), 60, "every lead", notifier)
        await asyncio.sleep(1.5)
    finally:
        notifier.stop()
    assert set(leads_posted().values()) == {1}  # each lead once, none lost
    delivered = sink.delivered()
    assert [r.status for r in sink.received[:3]] == [500, 429, 200]
    assert 3 <= len(delivered) <= 8, [len(r.json()["blocks"]) for r in delivered]
    gaps = [b.at - a.at for a, b in itertools.pairwise(delivered)]
    assert min(gaps) > 0.85, gaps
    assert sink.received[1].at - sink.received[0].at > 0.4  # backed off after the 500
    assert sink.received[2].at - sink.received[1].at > 0.95  # obeyed Retry-After: 1
    assert "retrying in" in notifier.log_text()
    assert sink.url not in notifier.log_text()  # the webhook URL is a secret
