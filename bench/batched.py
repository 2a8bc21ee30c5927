"""A design ceiling: the worker's own effects driver on aiokafka batches, without Faust.

The harness measures it beside the passthrough ceiling and the Faust worker,
on the same preloaded input topics, to show what Faust's per-message path
costs. It is not the product: it runs the same driver as the worker
(``stream_app.worker.pipeline.PartitionBatch``) with the same hop (a repartition
topic keyed by subject), in the same order per batch: transitions and hops
sent and acknowledged, then each changed record written once to RocksDB and
to a changelog topic, then score updates and dead letters; input offsets are
committed after every batch's sends are acknowledged. It leaves out
rebalances, changelog restore, the decay sweep and the Redis projection.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rocksdict import Options, Rdict

from stream_app.codec import decode_record, encode_output, encode_record
from stream_app.config import Settings
from stream_app.kafka import ensure_topics
from stream_app.messages import Record
from stream_app.scoring.rules import Rules
from stream_app.topics import TopicNames
from stream_app.worker.pipeline import PartitionBatch


async def batched_pipeline(
    settings: Settings, rules: Rules, limit: int, datadir: Path, bootstrap: str
) -> dict[str, Any]:
    """Run the driver over about ``limit`` of the preloaded input messages (then the inputs
    are paused and the hop drained); events/s from the first fetch to the last message
    handled, input or hop."""
    prefix = settings.topic_prefix
    names = TopicNames(prefix)
    hop = f"{prefix}xp.repartition"
    changelog, updates = f"{prefix}xp.changelog", f"{prefix}xp.updates"
    transitions, letters = f"{prefix}xp.transitions", f"{prefix}xp.dead"
    await ensure_topics(settings, [hop, changelog, updates, transitions, letters])
    inputs = set(names.inputs)
    partitions = settings.topic_partitions
    consumer = AIOKafkaConsumer(
        *names.inputs,
        hop,
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}batched",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    store = Rdict(str(datadir), Options(raw_mode=True))
    cache: dict[bytes, Record] = {}
    counts = {"inputs": 0, "hops": 0, "transitions": 0}

    def load(key: str) -> Record | None:
        raw_key = key.encode()
        cached = cache.get(raw_key)
        return cached if cached is not None else decode_record(store.get(raw_key))

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
            by_partition: dict[int, PartitionBatch] = {}
            for tp, records in batch.items():
                driver = by_partition.get(tp.partition)
                if driver is None:
                    driver = by_partition[tp.partition] = PartitionBatch(
                        tp.partition, partitions, rules, load
                    )
                for m in records:
                    if tp.topic in inputs:
                        counts["inputs"] += 1
                        driver.input(m.value, topic=m.topic, offset=m.offset, key=m.key)
                    else:
                        counts["hops"] += 1
                        driver.internal(m.value or b"", topic=m.topic, offset=m.offset, key=m.key)
            acks = []
            for driver in by_partition.values():
                out = driver.out
                counts["transitions"] += len(out.transitions)
                for t in out.transitions:
                    acks.append(
                        await producer.send(
                            transitions, key=t.lead_id.encode(), value=encode_output(t)
                        )
                    )
                for subject, value, _ in out.forward_bytes():
                    acks.append(await producer.send(hop, key=subject, value=value))
            await asyncio.gather(*acks)
            acks = []
            for driver in by_partition.values():
                out = driver.out
                for key, record in out.records.items():
                    if record is None:  # erased: a delete and a changelog tombstone
                        del store[key.encode()]  # a no-op for a key RocksDB lacks
                        cache.pop(key.encode(), None)
                        acks.append(await producer.send(changelog, key=key.encode(), value=None))
                        continue
                    raw = encode_record(record)
                    store[key.encode()] = raw
                    cache[key.encode()] = record
                    acks.append(await producer.send(changelog, key=key.encode(), value=raw))
                for update in out.updates.values():
                    acks.append(
                        await producer.send(
                            updates, key=update.lead_id.encode(), value=encode_output(update)
                        )
                    )
                for letter_key, letter in out.dead_letters:
                    acks.append(
                        await producer.send(letters, key=letter_key, value=encode_output(letter))
                    )
            await asyncio.gather(*acks)
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
