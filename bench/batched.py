"""A design ceiling: the worker's three stages on aiokafka batches, without Faust.

The harness measures it beside the passthrough ceiling and the Faust worker,
on the same preloaded input topics, to show what the per-message framework
costs and what a batched hot path could reach. It is not the product: it runs
the same stage functions (``stream_app.pipeline``: ingest, identify, score)
with the same hops through Kafka (identity topic, scoring topic), stores each
record in RocksDB and sends it to a changelog topic, sends the score updates,
transitions and dead letters, and commits its input offsets after every
batch's sends are acknowledged. It leaves out what makes the worker safe to
run: the outbox's ordering (transitions are sent with the record, not after
it), rebalances, changelog restore, the decay sweep and the Redis projection.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rocksdict import Options, Rdict

from stream_app.config import Settings
from stream_app.kafka import ensure_topics
from stream_app.pipeline import (
    Record,
    dump_envelope,
    dump_record,
    event_from_json,
    identify,
    ingest,
    load_envelope,
    load_record,
    score,
)
from stream_app.scoring.rules import Rules
from stream_app.topics import TopicNames


async def batched_pipeline(
    settings: Settings, rules: Rules, limit: int, datadir: Path, bootstrap: str
) -> dict[str, Any]:
    """Run the stages over about ``limit`` of the preloaded input messages (then the inputs
    are paused and the hops drained); events/s from the first fetch to the last message
    handled, input or hop."""
    prefix = settings.topic_prefix
    names = TopicNames(prefix)
    hop_identity, hop_scoring = f"{prefix}xp.identity", f"{prefix}xp.scoring"
    changelog, updates = f"{prefix}xp.changelog", f"{prefix}xp.updates"
    transitions, letters = f"{prefix}xp.transitions", f"{prefix}xp.dead"
    await ensure_topics(
        settings, [hop_identity, hop_scoring, changelog, updates, transitions, letters]
    )
    inputs = set(names.inputs)
    route = {"dead_letter": letters, "identity": hop_identity, "scoring": hop_scoring}
    consumer = AIOKafkaConsumer(
        *names.inputs, hop_identity, hop_scoring, bootstrap_servers=bootstrap,
        group_id=f"{prefix}batched", auto_offset_reset="earliest", enable_auto_commit=False,
        max_poll_records=5000,
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    store = Rdict(str(datadir), Options(raw_mode=True))
    links: dict[bytes, bytes] = {}
    cache: dict[bytes, Record] = {}
    counts = {"inputs": 0, "hops": 0, "transitions": 0}
    sent: list[asyncio.Future[Any]] = []  # this batch's sends, awaited before the commit

    async def send(topic: str, key: bytes | None, value: bytes) -> None:
        sent.append(await producer.send(topic, key=key, value=value))

    await consumer.start()
    await producer.start()
    try:
        started = last = 0.0
        idle = 0
        while idle < 3:  # 3 empty fetches of 200 ms after the last input: all hops done
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            if counts["inputs"] >= limit:  # the rest of the inputs stay unread
                consumer.pause(*(tp for tp in consumer.assignment() if tp.topic in inputs))
            if not batch:
                idle += counts["inputs"] >= limit
                continue
            idle = 0
            started = started or time.perf_counter()
            for tp, records in batch.items():
                for m in records:
                    if tp.topic in inputs:
                        counts["inputs"] += 1
                        routed = ingest(m.value, topic=m.topic, partition=m.partition,
                                        offset=m.offset, key=m.key)  # fmt: skip
                        key = m.key if routed.stage == "dead_letter" else routed.key.encode()
                        await send(route[routed.stage], key, routed.payload())
                        continue
                    counts["hops"] += 1
                    assert m.key is not None and m.value is not None
                    if tp.topic == hop_identity:
                        linked = links.get(m.key)
                        link, lead, out = identify(
                            event_from_json(m.value), linked.decode() if linked else None
                        )
                        await send(hop_scoring, lead.encode(), dump_envelope(out))
                        if link is not None:
                            links[m.key] = link.encode()
                            store[b"link:" + m.key] = link.encode()
                        continue
                    record = cache.get(m.key)
                    if record is None:
                        record = load_record(store.get(m.key))
                    effects = score(m.key.decode(), load_envelope(m.value), record, rules)
                    for target_key, envelope in effects.forward:
                        await send(hop_scoring, target_key.encode(), dump_envelope(envelope))
                    if effects.record is not None:
                        stored = Record(state=effects.record.state)
                        raw = dump_record(stored)
                        store[m.key] = raw
                        cache[m.key] = stored
                        await send(changelog, m.key, raw)
                    for t in effects.resend + effects.transitions:
                        counts["transitions"] += 1
                        await send(transitions, t.lead_id.encode(), t.model_dump_json().encode())
                    if effects.update is not None:
                        update = effects.update
                        await send(updates, update.lead_id.encode(),
                                   update.model_dump_json().encode())  # fmt: skip
            await asyncio.gather(*sent)
            sent.clear()
            await consumer.commit()
            last = time.perf_counter()
        seconds = last - started
    finally:
        await consumer.stop()
        await producer.stop()
        store.close()
    return {
        "seconds": round(seconds, 2),
        "events": counts["inputs"],
        "events_per_second": round(counts["inputs"] / seconds),
        "hop_messages": counts["hops"],
        "transitions": counts["transitions"],
    }
