"""What every phase shares: the result record, the machine, the traffic, Kafka and Redis helpers.

Nothing here knows the worker's internal topics: ``bench/topology.py`` asks the
product for them.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tqdm import tqdm

from stream_app.config import REPO_ROOT, Settings
from stream_app.topics import TopicNames
from tools.devstack import kafka_version
from tools.traffic import generate

BOOTSTRAP = "127.0.0.1:9092"
RESULTS = REPO_ROOT / "bench" / "results"

Message = tuple[str, bytes | None, bytes]  # input topic base name, key, value
Watched = list[tuple[str, list[str]]]  # consumer group, the topics it reads


@dataclass
class Result:
    mode: str
    command: str
    started_at: str
    commit: str
    machine: dict[str, Any]
    versions: dict[str, str]
    events: int
    prospects: int
    bad_messages: int
    partitions: int
    summary: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    names = ["faust-streaming", "aiokafka", "redis", "pydantic", "rocksdict"]
    return {"kafka": kafka_version(), **{n: version(n) for n in names}}


def git_commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return out or "unknown"


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")


def subject_key(event: dict[str, Any]) -> bytes:
    """How tracking pipelines key a message: the lead id, else the anonymous id."""
    return str(event.get("lead_id") or event.get("anonymous_id")).encode()


def traffic(events: int, prospects: int, seed: int, prefix: str) -> list[Message]:
    """(input topic base, subject key, value) for each message, one bad message in 1000."""
    out: list[Message] = []
    names = TopicNames()
    for n, event in enumerate(generate(prospects, seed, id_prefix=prefix)):
        if len(out) >= events:
            break
        out.append((names.input_for(event["type"]), subject_key(event), json.dumps(event).encode()))
        if n % 1000 == 999 and len(out) < events:
            out.append(("page_views", b"bad", b'{"type": "page_view", "event_id": 1}'))
    return out


def unkeyed(messages: list[Message]) -> list[Message]:
    """The same messages without a key: the producer spreads them over the partitions."""
    return [(topic, None, value) for topic, _, value in messages]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of a non-empty list."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_figures(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds of latencies in seconds (empty: no figures)."""
    if not values:
        return {}
    out = {f"p{int(q * 100)}_ms": round(percentile(values, q) * 1000, 1) for q in (0.5, 0.95, 0.99)}
    out["max_ms"] = round(max(values) * 1000, 1)
    return out


async def preload(messages: list[Message], prefix: str, desc: str = "preload") -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    sent: list[asyncio.Future[Any]] = []
    try:
        for topic, key, value in tqdm(messages, desc=desc, unit="msg", disable=None):
            sent.append(await producer.send(prefix + topic, key=key, value=value))
        await producer.flush()
        await asyncio.gather(*sent)  # a send that failed after its retries raises here
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def watch_from_end(topic: str, fetch_max_wait_ms: int = 10) -> AIOKafkaConsumer:
    """A started consumer of ``topic`` positioned at its end, so it sees only what is
    produced after this returns (the caller stops it)."""
    watch = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="latest",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    await watch.start()
    await watch.getmany(timeout_ms=100)  # position at the end before anything is produced
    return watch


class Kafka:
    """Admin, metadata and a producer on the local broker, for the phases."""

    async def __aenter__(self) -> Kafka:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        self.meta = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=2)
        self.probe = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)  # end offsets, kept open
        await self.admin.start()
        await self.meta.start()
        await self.probe.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()
        await self.meta.stop()
        await self.probe.stop()

    async def ends(self, topics: list[str]) -> dict[TopicPartition, int]:
        partitions = [
            TopicPartition(t, p) for t in topics for p in await self.meta.partitions_for(t)
        ]
        return dict(await self.probe.end_offsets(partitions))

    async def lag(self, group: str, topics: list[str]) -> int:
        """Messages in ``topics`` that ``group`` has not committed yet."""
        ends = await self.ends(topics)
        committed = await self.admin.list_consumer_group_offsets(group)
        return sum(
            max(0, end - (committed[tp].offset if tp in committed else 0))
            for tp, end in ends.items()
        )

    async def total_lag(self, groups: Watched) -> int:
        return sum([await self.lag(group, topics) for group, topics in groups])

    async def wait_caught_up(self, groups: Watched, limit_s: float, desc: str = "") -> float:
        """Seconds until every group has committed every message of its topics (a progress
        bar of committed messages when ``desc`` is given)."""
        started = time.perf_counter()
        with Progress(desc) as bar:
            while (lag := await self.total_lag(groups)) > 0:
                bar.remaining(lag)
                if time.perf_counter() - started > limit_s:
                    raise RuntimeError(f"{groups} did not catch up within {limit_s:.0f}s")
                await asyncio.sleep(0.5)
            bar.remaining(0)
        return time.perf_counter() - started

    async def read_all(self, topic: str) -> list[bytes]:
        """Every value in ``topic`` up to its current end."""
        ends = await self.ends([topic])
        consumer = AIOKafkaConsumer(
            bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        out: list[bytes] = []
        try:
            wanted = {tp: end for tp, end in ends.items() if end > 0}
            consumer.assign(list(ends))
            await consumer.seek_to_beginning(*ends)
            while wanted:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batch.items():
                    out += [r.value for r in records if r.value is not None]
                    if records and records[-1].offset + 1 >= wanted.get(tp, 0):
                        wanted.pop(tp, None)
        finally:
            await consumer.stop()
        return out


class Progress:
    """A tqdm bar of messages done out of a backlog that may grow (internal hops add to it)."""

    def __init__(self, desc: str) -> None:
        self.bar = tqdm(desc=desc, unit="msg", total=0, disable=None if desc else True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def remaining(self, lag: int) -> None:
        if lag > self.bar.total - self.bar.n:
            self.bar.total = self.bar.n + lag
        self.bar.update(max(0, self.bar.total - lag - self.bar.n))


def transition_ids(values: list[bytes]) -> list[str]:
    return [json.loads(v)["transition_id"] for v in values]


def compare_transitions(expected: set[str], received: list[str]) -> dict[str, int]:
    """The transitions the pure core expects vs those on the transitions topic (by id)."""
    got = set(received)
    return {
        "transitions_expected": len(expected),
        "transitions_received": len(received),
        "transitions_distinct": len(got),
        "transitions_missing": len(expected - got),
        "transitions_unexpected": len(got - expected),
    }


async def drop_topics(prefixes: tuple[str, ...]) -> None:
    """Delete the run's topics: hundreds of leftover partitions slow the next runs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def redis_bytes_per_lead(redis_prefix: str) -> dict[str, Any]:
    client = redis.Redis.from_url(Settings().redis_url)
    leads = client.scard(f"{redis_prefix}leads")
    total = sum(client.memory_usage(k) or 0 for k in client.scan_iter(f"{redis_prefix}*", 5000))
    client.close()
    return {
        "leads": leads,
        "bytes": total,
        "bytes_per_lead": round(total / leads) if leads else None,
    }


def forget_redis(redis_prefix: str) -> None:
    client = redis.Redis.from_url(Settings().redis_url)
    keys = list(client.scan_iter(match=f"{redis_prefix}*", count=5000))
    for n in range(0, len(keys), 1000):
        client.delete(*keys[n : n + 1000])
    client.close()


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)
