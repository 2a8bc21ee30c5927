"""The bulk restore of the records table (stream_app/worker/restore.py), on the real Kafka.

1. A worker on an empty data directory restores a seeded changelog (several
   versions per key, tombstones) through the bulk path, Faust's own recovery
   finds nothing left to replay, and the stopped worker's RocksDB holds exactly
   the changelog's last value per key (no deleted key) with each partition's
   persisted offset at its last changelog offset.
2. A restore killed with SIGKILL mid-way leaves each partition's database a
   consistent prefix: exactly the last value per key of the changelog up to the
   offset it persisted; a second restore from there completes it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from rocksdict import Options, Rdict

from stream_app.codec import encode_record
from stream_app.config import REPO_ROOT, Settings
from stream_app.kafka import ensure_topics
from stream_app.messages import Record
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from tests.factories import generated
from tests.integration.live import WorkerProcess

pytestmark = pytest.mark.integration

OFFSET_KEY = b"__faust\0offset__"  # faust-streaming 0.15.3's Store.offset_key
PARTITIONS = 3

# (partition, offset) -> (key, value or None); what the changelog holds
Changelog = dict[tuple[int, int], tuple[bytes, bytes | None]]


def templates(rules: Rules) -> list[Any]:
    replay = Replay(rules)
    for event in generated(prospects=40, seed=5, count=400):
        replay.process(event)
    return list(replay.leads())


async def seed(
    bootstrap: str, topic: str, rules: Rules, leads: int, versions: int, batch_bytes: int
) -> Changelog:
    """``leads`` keys per partition, each written ``versions`` times, every fifth deleted
    at the end and every tenth written again after its tombstone (a new life)."""
    states = templates(rules)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=batch_bytes
    )
    await producer.start()
    written: Changelog = {}
    futures = []
    try:

        def value(n: int, version: int) -> bytes:
            state = states[(n + version) % len(states)]
            lead = f"lead-{n:05d}"
            return encode_record(Record.of(dataclasses.replace(state, key=lead, lead_id=lead)))

        plan: list[tuple[int, bytes, bytes | None]] = []
        for version in range(versions):
            for p in range(PARTITIONS):
                for n in range(p * leads, (p + 1) * leads):
                    plan.append((p, f"lead-{n:05d}".encode(), value(n, version)))
        for p in range(PARTITIONS):
            for n in range(p * leads, (p + 1) * leads, 5):
                plan.append((p, f"lead-{n:05d}".encode(), None))
            for n in range(p * leads, (p + 1) * leads, 10):
                plan.append((p, f"lead-{n:05d}".encode(), value(n, versions)))
        for p, key, raw in plan:
            futures.append((p, key, raw, await producer.send(topic, raw, key=key, partition=p)))
        await producer.flush()
    finally:
        await producer.stop()
    for p, key, raw, future in futures:
        written[(p, (await future).offset)] = (key, raw)
    return written


def last_values(
    changelog: Changelog, partition: int, upto: int | None = None
) -> dict[bytes, bytes]:
    """The changelog's last value per key of ``partition`` (offsets <= ``upto``)."""
    out: dict[bytes, bytes | None] = {}
    for (p, offset), (key, raw) in sorted(changelog.items()):
        if p == partition and (upto is None or offset <= upto):
            out[key] = raw
    return {k: v for k, v in out.items() if v is not None}


def read_db(path: Path) -> tuple[dict[bytes, bytes], int | None]:
    """A database's records and its persisted offset (Faust's key)."""
    db = Rdict(str(path), options=Options(raw_mode=True))
    try:
        items = {bytes(k): bytes(v) for k, v in db.items() if k != OFFSET_KEY}
        offset = db.get(OFFSET_KEY)
    finally:
        db.close()
    return items, None if offset is None else int(offset)


async def new_changelog(settings: Settings, name: str) -> None:
    await ensure_topics(
        Settings(topic_partitions=PARTITIONS), [name], {"cleanup.policy": "compact"}
    )


async def drop(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def test_a_worker_on_an_empty_directory_restores_the_changelog_in_bulk(
    kafka_bootstrap: str, settings: Settings, tmp_path: Path, rules: Rules
) -> None:
    run_id = uuid.uuid4().hex[:8]
    worker = WorkerProcess(run_id, tmp_path)
    changelog = worker.records_changelog
    await new_changelog(settings, changelog)
    try:
        seeded = await seed(
            kafka_bootstrap, changelog, rules, leads=300, versions=3, batch_bytes=64 * 1024
        )
        worker.start(timeout=120)
        worker.stop()
        text = worker.log_path.read_text()
        assert "bulk restore of active changelog partitions" in text
        # Faust's own reading logs this only when it has records left to replay
        assert "Restoring state from changelog topics" not in text
        dbs = sorted((tmp_path / f"data-{run_id}").rglob("lead-records-*.db"))
        assert len(dbs) == PARTITIONS
        for path in dbs:
            partition = int(path.name.removesuffix(".db").rsplit("-", 1)[1])
            items, offset = read_db(path)
            expected = last_values(seeded, partition)
            assert items == expected
            assert offset == max(o for p, o in seeded if p == partition)
            deleted = {k for (p, _), (k, v) in seeded.items() if p == partition} - set(expected)
            assert deleted and not deleted & set(items)
    finally:
        worker.stop()
        await drop(kafka_bootstrap, [changelog])


CHILD = """
import asyncio, sys, time
from aiokafka import TopicPartition
from rocksdict import Options, Rdict
from stream_app.config import Settings
from stream_app.worker.restore import Partition, consumer_options, restore_partitions

topic, data, ends = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
dbs = [Rdict(f"{data}/p{p}.db", options=Options(raw_mode=True)) for p in range(len(ends))]

def start(db):
    offset = db.get(b"__faust\\0offset__")
    return 0 if offset is None else int(offset) + 1

def written(tp, offset):
    print(f"written {tp.partition} {offset}", flush=True)
    time.sleep(0.02)  # a slow disk: room for the kill between two batches

parts = [
    Partition(TopicPartition(topic, p), db, start(db), end)
    for p, (db, end) in enumerate(zip(dbs, ends))
]
options = {**consumer_options(Settings()), "max_partition_fetch_bytes": 4096}
asyncio.run(restore_partitions(parts, options, b"__faust\\0offset__", on_written=written))
for db in dbs:
    db.close()
print("done", flush=True)
"""


def run_child(topic: str, data: Path, ends: list[int], kill_after: int | None) -> list[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, topic, str(data), ",".join(map(str, ends))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    lines: list[str] = []
    assert child.stdout is not None
    deadline = time.monotonic() + 120
    for line in child.stdout:
        lines.append(line.strip())
        if kill_after is not None and len(lines) >= kill_after:
            child.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "the restore child took too long"
    child.wait(30)
    child.stdout.close()
    return lines


async def test_a_restore_killed_mid_way_leaves_a_consistent_prefix(
    kafka_bootstrap: str, settings: Settings, tmp_path: Path, rules: Rules
) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}-restore-changelog"
    await new_changelog(settings, topic)
    try:
        # small producer batches and fetches: many write batches, and a kill between two
        seeded = await seed(kafka_bootstrap, topic, rules, leads=100, versions=3, batch_bytes=4096)
        ends = [max(o for p, o in seeded if p == q) + 1 for q in range(PARTITIONS)]
        lines = run_child(topic, tmp_path, ends, kill_after=12)
        assert "done" not in lines, "the restore finished before the kill: nothing was tested"
        partial = 0
        for p in range(PARTITIONS):
            items, offset = read_db(tmp_path / f"p{p}.db")
            assert items == last_values(seeded, p, upto=-1 if offset is None else offset)
            partial += offset is None or offset < ends[p] - 1
        assert partial, "every partition was complete at the kill"
        lines = run_child(topic, tmp_path, ends, kill_after=None)
        assert lines[-1] == "done"
        for p in range(PARTITIONS):
            items, offset = read_db(tmp_path / f"p{p}.db")
            assert items == last_values(seeded, p)
            assert offset == ends[p] - 1
    finally:
        await drop(kafka_bootstrap, [topic])
