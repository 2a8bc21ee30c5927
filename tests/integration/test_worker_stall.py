"""A fetch Faust drops without seeking back is noticed and read again (finding 9).

After a kill -9 and a restart, a fault run once found aiokafka positioned at
the end of three partitions while Faust's committed and read offsets stood
where the restart began: the records in between had been fetched, never
handed to the agent, never acked, and the worker sat idle with a backlog.
The worker's partition watch (``stream_app/worker/watch.py``) notices such a
partition and seeks it back to its committed offset.

Here the loss is injected: the worker runs with Faust's ``Consumer.getmany``
wrapped so that, while a flag file exists, every record of one partition of
``page_views`` is fetched and dropped, exactly what aiokafka and Faust are
left with in that fault run. The transitions must still be the oracle's.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import parse_event
from schemas.transitions import StageTransition
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.worker.pipeline import partition_of
from tests.faults.harness import lead_keyed
from tests.integration.live import WorkerProcess, collect

pytestmark = pytest.mark.integration

DROPPING_WORKER = """
import os, sys
from faust.transport.consumer import Consumer

topic, partition, flag = os.environ["DROP_WHILE"].split("|")
original = Consumer.getmany

async def getmany(self, timeout):
    async for tp, message in original(self, timeout):
        if tp.topic == topic and tp.partition == int(partition) and os.path.exists(flag):
            continue  # fetched (aiokafka's position moves on), never handed to a stream
        yield tp, message

Consumer.getmany = getmany
sys.argv = ["leadstream", "worker"]
from stream_app.commands.cli import main
main()
"""


def expected_of(events: list[dict[str, object]], rules: Rules) -> dict[str, StageTransition]:
    replay = Replay(rules)
    out: dict[str, StageTransition] = {}
    for event in events:
        for t in replay.process(parse_event(json.dumps(event))).transitions:
            out[t.transition_id] = t
    return out


async def test_records_fetched_and_dropped_are_read_again(
    kafka_bootstrap: str, tmp_path: Path, rules: Rules
) -> None:
    run_id = uuid.uuid4().hex[:8]
    events = lead_keyed(f"s{run_id}-", prospects=150, seed=5)
    split = int(len(events) * 0.7)
    before, expected = expected_of(events[:split], rules), expected_of(events, rules)
    # the partition that gets the most of the later events loses its fetch (lead ids
    # carry the run id, so which partition that is changes from run to run)
    late = Counter(partition_of(str(e["lead_id"]), 3) for e in events[split:])
    dropped, dropped_events = late.most_common(1)[0]
    assert len(expected) > len(before) > 20 and dropped_events > 50

    flag = tmp_path / "dropping"
    worker = WorkerProcess(run_id, tmp_path, LEADSTREAM_STALL_CHECK_SECONDS="1")
    topic = worker.names.input_for("page_view")
    worker.env["DROP_WHILE"] = f"{topic}|{dropped}|{flag}"
    worker.argv = [sys.executable, "-c", DROPPING_WORKER]  # the worker, wrapped
    worker.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:

        async def produce(batch: list[dict[str, object]]) -> None:
            for event in batch:
                await producer.send(
                    topic, key=str(event["lead_id"]).encode(), value=json.dumps(event).encode()
                )
            await producer.flush()

        await produce(events[:split])
        first = await collect(
            kafka_bootstrap, [worker.names.transitions], until=len(before), limit_s=90, quiet=2
        )
        assert len({StageTransition.model_validate_json(r).transition_id for r in first}) == len(
            before
        )
        flag.touch()  # the next fetch of that partition of page_views is lost
        await produce(events[split:])
        await asyncio.sleep(3)
        flag.unlink()
        raw = await collect(
            kafka_bootstrap, [worker.names.transitions], until=len(expected), limit_s=90, quiet=3
        )
    finally:
        await producer.stop()
        worker.stop()

    live = {t.transition_id: t for t in map(StageTransition.model_validate_json, raw)}
    assert live.keys() == expected.keys(), (
        f"{len(expected.keys() - live.keys())} lost, {len(live.keys() - expected.keys())} extra"
    )
    assert live == expected
    log = worker.log_text()
    assert f"partition {topic}:{dropped} sought back to its committed offset" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
