"""Stopping the worker mid-stream (kill -9, or SIGTERM) loses no transition.

The quick fault subset that runs in ``make test``.

Traffic is lead-keyed (anonymous ids replaced by the lead's id, identifies
turned into profile updates) and produced to one input topic, so per-lead
order is fixed end to end and the offline replay is an exact oracle even
though events are not fed in lock-step. The worker is killed with SIGKILL
once some transitions are out, restarted on the same RocksDB directory, and
the transitions published over both lives must be exactly the oracle's:
every id present, nothing extra, duplicates only as copies of the same
transition.
"""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import parse_event
from schemas.transitions import StageTransition
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from tests.faults.harness import lead_keyed
from tests.integration.live import WorkerProcess, collect

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_stopping_the_worker_mid_stream_loses_no_transition(
    kafka_bootstrap: str, tmp_path: Path, rules: Rules, sig: signal.Signals
) -> None:
    run_id = uuid.uuid4().hex[:8]
    events = lead_keyed(f"k{run_id}-", prospects=400, seed=21)
    replay = Replay(rules)
    expected: dict[str, StageTransition] = {}
    for event in events:
        for t in replay.process(parse_event(json.dumps(event))).transitions:
            expected[t.transition_id] = t
    assert len(expected) > 100

    # Static membership: the restarted worker takes its partitions back at once.
    worker = WorkerProcess(run_id, tmp_path, LEADSTREAM_INSTANCE_ID=f"crash-{run_id}")
    worker.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            topic = worker.names.input_for("page_view")
            for event in events:
                await producer.send(
                    topic, key=event["lead_id"].encode(), value=json.dumps(event).encode()
                )
            await producer.flush()
        finally:
            await producer.stop()

        # Kill it once a fifth of the transitions are out: mid-stream, with state,
        # changelog and outputs in flight.
        before = await collect(
            kafka_bootstrap,
            [worker.names.transitions],
            until=len(expected) // 5,
            limit_s=60,
            quiet=0,
        )
        worker.stop(sig)
        worker.start()
        raw = await collect(
            kafka_bootstrap, [worker.names.transitions], until=len(expected), limit_s=120, quiet=5
        )
    finally:
        worker.stop()

    assert len(expected) // 5 <= len(before) < len(expected), "the kill was not mid-stream"
    live = [StageTransition.model_validate_json(r) for r in raw]
    if sig == signal.SIGTERM:
        # a graceful stop commits what it processed: nothing is published twice
        assert len(live) == len({t.transition_id for t in live})
    by_id: dict[str, StageTransition] = {}
    for t in live:
        assert by_id.setdefault(t.transition_id, t) == t, "a duplicate must be an exact copy"
    missing = expected.keys() - by_id.keys()
    extra = by_id.keys() - expected.keys()
    assert not missing, f"{len(missing)} transitions lost"
    assert not extra, f"{len(extra)} transitions the oracle lacks"
    assert by_id == expected
    log = worker.log_text()
    assert "Traceback" not in log, log[-3000:]
