"""RudderStack- and Segment-shaped messages on a configured input topic, through the real worker.

The worker reads only ``LEADSTREAM_INPUT_TOPICS`` (one topic, as a pipeline's
Kafka destination writes it). Each flavour's journey (``tests.segment_cases``)
is fed in lock-step: RudderStack's through Kafka's own console producer,
keyed by ``userId`` else ``anonymousId``; Segment's unkeyed. The transitions
must equal the offline replay of the native twins, ids included; the
unmapped ``track`` is counted as ignored and the malformed message is a dead
letter with its reason. Every output record carries CloudEvents headers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from schemas.dead_letter import DeadLetter
from schemas.events import parse_event
from schemas.transitions import StageTransition
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from tests.integration.live import Lockstep, WorkerProcess, collect, worker_on_own_topic
from tests.segment_cases import Flavour, journey
from tools import kafka_tools

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    yield from worker_on_own_topic(tmp_path_factory, "rudder-events")


async def test_pipeline_messages_give_the_transitions_of_their_native_twins(
    worker: WorkerProcess, kafka_bootstrap: str, rules: Rules, redis_client: aioredis.Redis
) -> None:
    topic = worker.env["LEADSTREAM_INPUT_TOPICS"]
    prefix = uuid.uuid4().hex[:6]
    flavours: tuple[Flavour, ...] = ("rudderstack", "segment")
    trips = {flavour: journey(f"{prefix}{flavour[0]}", flavour) for flavour in flavours}
    replay = Replay(rules)
    expected: list[StageTransition] = []
    for trip in trips.values():
        for event in trip.native:
            expected += replay.process(parse_event(json.dumps(event))).transitions
    assert [t.to_stage for t in expected] == ["mql", "sql", "mql", "sql"]

    async with Lockstep(kafka_bootstrap, worker) as feed:
        # RudderStack's shape through Kafka's own console producer (a JVM client from the
        # broker's release), keyed as RudderStack keys; Segment's unkeyed, through aiokafka
        console = ConsoleProducer(kafka_bootstrap, topic)
        rudder = trips["rudderstack"]
        for n, message in enumerate(rudder.foreign):
            key = rudder.key(message, "rudderstack")
            assert key is not None
            console.send(key, json.dumps(message))
            if n < len(rudder.native):  # the last two are never scored: nothing to wait for
                await asyncio.wait_for(feed._wait_for(message["messageId"]), 60)
        printed = console.close()
        segment = trips["segment"]
        for n, message in enumerate(segment.foreign):
            value = json.dumps(message).encode()
            await feed.producer.send_and_wait(topic, key=None, value=value)
            if n < len(segment.native):
                await asyncio.wait_for(feed._wait_for(message["messageId"]), 30)
    assert "ERROR" not in printed, printed

    raw = await collect(kafka_bootstrap, [worker.names.transitions], until=len(expected))
    live = [StageTransition.model_validate_json(r) for r in raw]
    mine = [t for t in live if t.lead_id.startswith(prefix)]

    def by_lead(items: list[StageTransition]) -> list[StageTransition]:
        return sorted(items, key=lambda t: (t.lead_id, t.sequence))

    assert by_lead(mine) == by_lead(expected)  # Kafka orders per partition, not across

    # every output record is a CloudEvent by its headers (binary mode), its value unchanged
    headers = await first_headers(kafka_bootstrap, worker)
    ids = {t.transition_id.encode() for t in expected}
    assert headers[worker.names.transitions]["ce_id"] in ids
    for output, ce_type in [
        (worker.names.transitions, "stage_transition"),
        (worker.names.score_updates, "score_update"),
        (worker.names.dead_letters, "dead_letter"),
    ]:
        got = headers[output]
        assert got["ce_type"] == f"dev.leadstream.{ce_type}.v1".encode(), output
        assert got["ce_source"] == f"/leadstream/ls-{worker.run_id}".encode()
        assert got["content-type"] == b"application/json"
        assert {"ce_specversion", "ce_id", "ce_time"} <= set(got)

    raw = await collect(kafka_bootstrap, [worker.names.dead_letters], until=2)
    letters = [DeadLetter.model_validate_json(r) for r in raw]
    assert (
        sorted((d.reason, d.topic, d.error) for d in letters)
        == [("invalid", topic, "segment track: messageId: Field required")] * 2
    )

    ignored = 'leadstream_events_ignored_total{name="track:Product Viewed"}'
    for _ in range(100):  # counted when the batch is flushed
        if await worker.metric(ignored) == 2:
            break
        await asyncio.sleep(0.2)
    assert await worker.metric(ignored) == 2
    assert await worker.metric('leadstream_events_in_total{type="identify"}') == 2


class ConsoleProducer:
    """``kafka-console-producer``: Kafka's ConsoleProducer reading ``key<TAB>value`` lines."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.proc = subprocess.Popen(
            [
                "java",
                "-cp",
                kafka_tools.classpath(),
                kafka_tools.CONSOLE_PRODUCER,
                "--bootstrap-server",
                bootstrap,
                "--topic",
                topic,
                "--reader-property",
                "parse.key=true",
                "--reader-property",
                "key.separator=\t",
                "--command-property",
                "linger.ms=0",
                "--command-property",
                "acks=all",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def send(self, key: bytes, value: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{key.decode()}\t{value}\n")
        self.proc.stdin.flush()

    def close(self) -> str:
        """End of input: the producer flushes and exits; returns what it printed."""
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, out
        return out


async def first_headers(bootstrap: str, worker: WorkerProcess) -> dict[str, dict[str, bytes]]:
    """The headers of the first record of each output topic."""
    outputs = [worker.names.transitions, worker.names.score_updates, worker.names.dead_letters]
    consumer = AIOKafkaConsumer(
        *outputs,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"headers-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    found: dict[str, dict[str, bytes]] = {}
    try:
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=300)
            for tp, records in batch.items():
                if tp.topic not in found and records:
                    found[tp.topic] = dict(records[0].headers)
            if len(found) == len(outputs):
                break
    finally:
        await consumer.stop()
    return found
