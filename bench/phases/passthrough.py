"""The passthrough ceiling: raw aiokafka consume -> JSON decode -> produce, same topics."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import BOOTSTRAP
from bench.context import Run
from stream_app.topics import TopicNames


async def passthrough(prefix: str, total: int) -> dict[str, Any]:
    """Consume the input topics, decode the JSON, produce each message to one topic."""
    names = TopicNames(prefix)
    consumer = AIOKafkaConsumer(
        *names.inputs,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"{prefix}passthrough",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    seen = 0
    try:
        started = None
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batch:
                started = time.perf_counter()
            for records in batch.values():
                for record in records:
                    with contextlib.suppress(ValueError):
                        json.loads(record.value)
                    await producer.send(f"{prefix}passthrough", key=record.key, value=record.value)
                    seen += 1
        await producer.flush()
        await consumer.commit()
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
        await producer.stop()
    return {"seconds": round(seconds, 2), "events_per_second": round(total / seconds)}


async def run(run: Run) -> None:
    run.figures["passthrough"] = await passthrough(run.prefix(), len(run.messages))
