"""Benchmark harness: the live worker beside its ceilings, on the real local stack.

    python -m bench.harness --quick          # 20,000 events (make bench-quick)
    python -m bench.harness                  # 1,000,000 events over 100,000 prospects

Every figure is measured in the same run as its baseline, on the same seeded
events (skewed activity, the real mix of event types, identify merges, one
bad message in a thousand):

- pure core: decode + identity + scoring in one process (``Replay``), no Kafka;
- passthrough ceiling: a raw aiokafka consumer -> JSON decode -> producer over
  the same preloaded topics and partitions;
- design ceiling: the worker's stage functions on aiokafka batches, no Faust
  (``bench/batched.py``), over ``--batched-events`` of the same inputs;
- full worker: ``python -m stream_app worker`` from start until its consumer
  groups have committed every input, internal hop, score update and transition;
- memory: worker RSS, RocksDB bytes per lead, Redis bytes per lead;
- latency: fresh traffic offered at steady rates; producer send of an event ->
  its transition received on the transitions topic (p50/p95/p99/max);
- recovery: kill -9 and restart on the same data, then a worker on an empty
  data directory (changelog replay): seconds until a probe event is scored;
- scale-out: two workers together on freshly preloaded topics;
- state at scale: a fresh app's lead-records changelog seeded with ``--state-leads``
  copies of the pure core's lead records; restore from an empty data directory,
  RSS, RocksDB bytes per lead, kill -9 and restart.

Results go to ``bench/results/<UTC time>-<mode>.json`` and ``.md`` with the
command, git commit, machine and library versions. ``--profile FILE`` runs the
throughput phase under py-spy (``pip install py-spy``); ``--until 3`` stops after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tqdm import tqdm

from bench.batched import batched_pipeline
from schemas.dead_letter import DeadLetter
from stream_app.codec import decode
from stream_app.config import REPO_ROOT, Settings
from stream_app.devstack import kafka_answers, kafka_version
from stream_app.kafka import ensure_topics
from stream_app.pipeline import Record, dump_record
from stream_app.projector import projection_group
from stream_app.rules_file import Rules, load_rules
from stream_app.scoring.replay import Replay
from stream_app.topics import TopicNames
from stream_app.traffic import generate

BOOTSTRAP = "127.0.0.1:9092"
RESULTS = REPO_ROOT / "bench" / "results"


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
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "os": platform.platform(), "python": platform.python_version()}  # fmt: skip


def versions() -> dict[str, str]:
    names = ["faust-streaming", "aiokafka", "redis", "pydantic", "rocksdict"]
    return {"kafka": kafka_version(), **{n: version(n) for n in names}}


def traffic(events: int, prospects: int, seed: int, prefix: str) -> list[tuple[str, bytes, bytes]]:
    """(input topic base, key, value) for each message, with one bad message in 1000."""
    out: list[tuple[str, bytes, bytes]] = []
    names = TopicNames()
    for n, event in enumerate(generate(prospects, seed, id_prefix=prefix)):
        if len(out) >= events:
            break
        key = str(event.get("lead_id") or event.get("anonymous_id")).encode()
        out.append((names.input_for(event["type"]), key, json.dumps(event).encode()))
        if n % 1000 == 999 and len(out) < events:
            out.append(("page_views", b"bad", b'{"type": "page_view", "event_id": 1}'))
    return out


def pure_core(
    messages: list[tuple[str, bytes, bytes]], rules: Rules
) -> tuple[dict[str, Any], Replay]:
    replay = Replay(rules)
    started = time.perf_counter()
    bad = 0
    for _, _, value in messages:
        decoded = decode(value)
        if isinstance(decoded, DeadLetter):
            bad += 1
            continue
        replay.process(decoded)
    seconds = time.perf_counter() - started
    leads = sum(1 for _ in replay.leads())
    figures = {"seconds": round(seconds, 2), "events_per_second": round(len(messages) / seconds),
               "leads": leads, "keys": len(replay.states), "dead_letters": bad}  # fmt: skip
    return figures, replay


async def preload(messages: list[tuple[str, bytes, bytes]], prefix: str) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20,
                                max_batch_size=256 * 1024)  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    try:
        for topic, key, value in tqdm(messages, desc="preload", unit="msg", disable=None):
            await producer.send(prefix + topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def passthrough(prefix: str, total: int) -> dict[str, Any]:
    """The ceiling: consume the same input topics, decode JSON, produce to one topic."""
    names = TopicNames(prefix)
    consumer = AIOKafkaConsumer(
        *names.inputs, bootstrap_servers=BOOTSTRAP, group_id=f"{prefix}passthrough",
        auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=5000,
    )  # fmt: skip
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


def child_pid(pid: int) -> int:
    """The first child of ``pid`` (the worker under py-spy)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


class BenchWorker:
    """``python -m stream_app worker`` as a process, on the run's topics, Redis prefix and group."""

    def __init__(
        self, prefix: str, app_id: str, redis_prefix: str, data_dir: Path, instance: str,
        log: Path, profile: Path | None = None,
    ) -> None:  # fmt: skip
        self.log = log
        self.profile = profile
        self.env = {**os.environ, "LEADSTREAM_TOPIC_PREFIX": prefix, "LEADSTREAM_APP_ID": app_id,
                    "LEADSTREAM_DATA_DIR": str(data_dir), "LEADSTREAM_INSTANCE_ID": instance,
                    "LEADSTREAM_REDIS_KEY_PREFIX": redis_prefix,
                    "LEADSTREAM_SWEEP_INTERVAL_SECONDS": "3600"}  # fmt: skip
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> None:
        command = [sys.executable, "-m", "stream_app", "worker"]
        if self.profile is not None:  # py-spy samples the worker; collapsed stacks
            spy = str(Path(sys.executable).parent / "py-spy")
            command = [spy, "record", "--format", "raw", "-r", "50", "-o", str(self.profile),
                       "--", *command]  # fmt: skip
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid if self.profile is None else child_pid(self.proc.pid)

    def log_text(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace")

    async def wait_started(self) -> None:
        """Until the worker logged its rules line (it is connecting to Kafka then)."""
        while "Leadstream worker: rules" not in self.log_text():
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log}")
            await asyncio.sleep(0.1)

    def _status_mib(self, field: str) -> float:
        """A ``kB`` field of the worker's ``/proc/<pid>/status``, in MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        return round(int(next(ln.split()[1] for ln in status if ln.startswith(field))) / 1024, 1)

    def rss_mib(self) -> float:
        return self._status_mib("VmRSS:")

    def peak_rss_mib(self) -> float:
        return self._status_mib("VmHWM:")

    def rocksdb_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.data_dir.rglob("*") if f.is_file())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, IndexError):
            os.kill(self.pid, sig)  # under py-spy: py-spy writes its file when the worker ends
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class Kafka:
    """Admin, metadata and a producer on the local broker, for the phases below."""

    async def __aenter__(self) -> Kafka:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        self.meta = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=2)
        await self.admin.start()
        await self.meta.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()
        await self.meta.stop()

    async def ends(self, topics: list[str]) -> dict[TopicPartition, int]:
        partitions = [
            TopicPartition(t, p) for t in topics for p in await self.meta.partitions_for(t)
        ]
        probe = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
        await probe.start()
        try:
            return dict(await probe.end_offsets(partitions))
        finally:
            await probe.stop()

    async def lag(self, group: str, topics: list[str]) -> int:
        """Messages in ``topics`` that ``group`` has not committed yet."""
        ends = await self.ends(topics)
        committed = await self.admin.list_consumer_group_offsets(group)
        return sum(max(0, end - (committed[tp].offset if tp in committed else 0))
                   for tp, end in ends.items())  # fmt: skip

    async def wait_caught_up(self, groups: Watched, limit_s: float) -> float:
        started = time.perf_counter()
        while sum([await self.lag(group, topics) for group, topics in groups]) > 0:
            if time.perf_counter() - started > limit_s:
                raise RuntimeError(f"{groups} did not catch up within {limit_s:.0f}s")
            await asyncio.sleep(0.5)
        return time.perf_counter() - started


def scoring_topics(prefix: str, app_id: str) -> list[str]:
    """What the worker's group reads to score: the inputs and its two internal hops."""
    names = TopicNames(prefix)
    return [*names.inputs, names.identity_events(app_id), names.scoring_events(app_id)]


Watched = list[tuple[str, list[str]]]  # consumer group, the topics it reads


def watched(prefix: str, app_id: str) -> Watched:
    """What the worker consumes, by group: the scoring group's topics, and the score updates
    and transitions its Redis projection reads in a group of its own."""
    names = TopicNames(prefix)
    return [(app_id, scoring_topics(prefix, app_id)),
            (projection_group(app_id), [names.score_updates, names.transitions])]  # fmt: skip


async def throughput(
    kafka: Kafka, worker: BenchWorker, prefix: str, app_id: str, total: int
) -> dict[str, Any]:
    """From the worker's start-up line until its group committed every offset.

    Also when the scoring alone was done (inputs and internal hops committed), and
    the largest backlog of the Redis projection seen on the way (uncommitted score
    updates and transitions), so a projection that lags behind the scoring shows.
    """
    worker.start()
    await worker.wait_started()
    started = time.perf_counter()
    (_, scoring), (projector, projected) = watched(prefix, app_id)
    scored: float | None = None
    backlog = 0
    while True:
        if time.perf_counter() - started > 7200:
            raise RuntimeError(f"group {app_id} did not catch up within 7200s")
        scoring_lag = await kafka.lag(app_id, scoring)
        projection_lag = await kafka.lag(projector, projected)
        backlog = max(backlog, projection_lag)
        if scoring_lag == 0 and scored is None:
            scored = time.perf_counter() - started
        if scoring_lag == 0 and projection_lag == 0:
            break
        await asyncio.sleep(0.5)
    seconds = time.perf_counter() - started
    assert scored is not None
    transitions = sum((await kafka.ends([TopicNames(prefix).transitions])).values())
    return {"seconds": round(seconds, 2), "events_per_second": round(total / seconds),
            "scored_s": round(scored, 2), "scored_events_per_second": round(total / scored),
            "projection_backlog_max": backlog, "rss_mib": worker.rss_mib(),
            "transitions": transitions}  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(
    kafka: Kafka, prefix: str, groups: Watched, rate: int, seconds: float,
    seed: int, tag: str,
) -> dict[str, Any]:  # fmt: skip
    """Offer ``rate`` events/s of fresh prospects; produce time -> transition received."""
    names = TopicNames(prefix)
    events = [e for e in generate(max(50, rate * int(seconds) // 8), seed, id_prefix=tag)]
    events = events[: int(rate * seconds)]
    watch = AIOKafkaConsumer(names.transitions, bootstrap_servers=BOOTSTRAP,
                             auto_offset_reset="latest", fetch_max_wait_ms=10)  # fmt: skip
    await watch.start()
    await watch.getmany(timeout_ms=100)  # position at the end before producing
    sent_at: dict[str, float] = {}
    received: dict[str, float] = {}

    async def receive() -> None:
        while True:
            batch = await watch.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    t = json.loads(record.value)
                    if t.get("triggering_event_id") in sent_at:
                        received.setdefault(
                            t["transition_id"], now - sent_at[t["triggering_event_id"]]
                        )

    receiver = asyncio.create_task(receive())
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=2)
    await producer.start()
    try:
        started = time.perf_counter()
        for n, event in enumerate(events):
            due = started + n / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            key = str(event.get("lead_id") or event.get("anonymous_id")).encode()
            sent_at[event["event_id"]] = time.perf_counter()
            await producer.send(names.input_for(event["type"]), key=key,
                                value=json.dumps(event).encode())  # fmt: skip
        await producer.flush()
        offered = len(events) / (time.perf_counter() - started)
        drain = await kafka.wait_caught_up(groups, limit_s=600)
        await asyncio.sleep(1.0)  # the last transitions on their way
    finally:
        receiver.cancel()
        await producer.stop()
        await watch.stop()
    values = list(received.values())
    out: dict[str, Any] = {"offered_per_second": rate, "achieved_offer": round(offered),
                           "events": len(events), "transitions": len(values),
                           "drain_after_last_send_s": round(drain, 1)}  # fmt: skip
    if values:
        out |= {f"p{int(q * 100)}_ms": round(percentile(values, q) * 1000, 1)
                for q in (0.5, 0.95, 0.99)}  # fmt: skip
        out["max_ms"] = round(max(values) * 1000, 1)
    return out


async def probe(prefix: str, tag: str, limit_s: float = 300) -> float:
    """Send one lead's profile event; seconds until its score update comes out."""
    names = TopicNames(prefix)
    event_id = f"{tag}-probe-{uuid.uuid4().hex[:6]}"
    event = {"type": "profile_update", "event_id": event_id, "lead_id": f"{tag}-probe",
             "occurred_at": datetime.now(UTC).isoformat(), "job_title": "VP Marketing"}  # fmt: skip
    watch = AIOKafkaConsumer(names.score_updates, bootstrap_servers=BOOTSTRAP,
                             auto_offset_reset="latest", fetch_max_wait_ms=20)  # fmt: skip
    await watch.start()
    await watch.getmany(timeout_ms=100)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        started = time.perf_counter()
        await producer.send_and_wait(names.input_for("profile_update"),
                                     key=event["lead_id"].encode(),
                                     value=json.dumps(event).encode())  # fmt: skip
        while time.perf_counter() - started < limit_s:
            batch = await watch.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if json.loads(record.value).get("event_id") == event_id:
                        return time.perf_counter() - started
        raise RuntimeError(f"probe {event_id} got no score update within {limit_s}s")
    finally:
        await producer.stop()
        await watch.stop()


async def recovery(
    kafka: Kafka, worker: BenchWorker, prefix: str, app_id: str, empty_dir: Path, tag: str
) -> dict[str, Any]:
    """kill -9 then restart on the same data; then a new worker on an empty data directory."""
    out: dict[str, Any] = {}
    worker.stop(signal.SIGKILL)
    worker.start()
    spawn = worker.started
    seconds_to_probe = await probe(prefix, f"{tag}-k9")
    out["restart_after_kill9_s"] = round(time.perf_counter() - spawn, 1)
    out["restart_probe_wait_s"] = round(seconds_to_probe, 1)
    worker.stop()
    changelogs = [
        f"{app_id}-lead-records-changelog",
        f"{app_id}-identity-links-changelog",
    ]  # Faust names them, without our prefix
    existing = set(await kafka.admin.list_topics())
    changelogs = [t for t in changelogs if t in existing]
    records = sum((await kafka.ends(changelogs)).values()) if changelogs else 0
    worker.data_dir = empty_dir
    worker.env["LEADSTREAM_DATA_DIR"] = str(empty_dir)
    worker.start()
    spawn = worker.started
    await probe(prefix, f"{tag}-empty", limit_s=3600)  # a changelog replay can take long
    seconds = time.perf_counter() - spawn
    out |= {"empty_dir_restore_s": round(seconds, 1), "changelog_records": records,
            "changelog_records_per_s": round(records / seconds)}  # fmt: skip
    return out


def redis_bytes_per_lead(redis_prefix: str) -> dict[str, Any]:
    client = redis.Redis.from_url(Settings().redis_url)
    leads = client.scard(f"{redis_prefix}leads")
    total = sum(client.memory_usage(k) or 0 for k in client.scan_iter(f"{redis_prefix}*", 5000))
    client.close()
    return {"leads": leads, "bytes": total,
            "bytes_per_lead": round(total / leads) if leads else None}  # fmt: skip


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


def forget_redis(redis_prefix: str) -> None:
    client = redis.Redis.from_url(Settings().redis_url)
    keys = list(client.scan_iter(match=f"{redis_prefix}*", count=5000))
    for n in range(0, len(keys), 1000):
        client.delete(*keys[n : n + 1000])
    client.close()


def render(result: Result) -> str:
    f = result.figures

    def num(value: Any, unit: str = "") -> str:
        return "n/a" if value is None else f"{value:,}{unit}"

    rows = [
        ("pure core (Replay, one process)", f["pure_core"]["events_per_second"], ""),
        ("passthrough ceiling (aiokafka)", f["passthrough"]["events_per_second"], ""),
        ("full worker", f["worker"]["events_per_second"],
         f"{f['ratios']['worker_vs_passthrough']:.1%} of passthrough, "
         f"{f['ratios']['worker_vs_core']:.1%} of core; scoring alone done after "
         f"{f['worker'].get('scored_s', 'n/a')} s of {f['worker']['seconds']} s "
         f"({num(f['worker'].get('scored_events_per_second'))} events/s), the rest is the "
         "Redis projection catching up; its backlog was at most "
         f"{num(f['worker'].get('projection_backlog_max'))} messages; "
         f"{num(f['worker'].get('transitions'))} transitions"),
    ]  # fmt: skip
    if "batched" in f:
        b = f["batched"]
        times = b["events_per_second"] / f["worker"]["events_per_second"]
        rows.insert(2, ("the worker's stages on aiokafka batches, no Faust (design ceiling)",
                        b["events_per_second"], f"{b['events']:,} events; {times:.1f}x the full "
                        f"worker; {b['transitions']:,} transitions"))  # fmt: skip
    if "scale_out" in f:
        two = f["scale_out"]
        rows.append((f"two workers ({two['events']:,} events)", two["events_per_second"],
                     f"{two['vs_one_worker']:.2f}x one worker"))  # fmt: skip
    lines = [
        f"# Benchmark ({result.mode}), {result.started_at}",
        "",
        f"`{result.command}` at commit {result.commit}",
        "",
        f"Machine: {result.machine['cpu']}, {result.machine['cores']} cores, "
        f"{result.machine['memory_gib']} GiB, {result.machine['os']}, Python "
        f"{result.machine['python']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in result.versions.items()),
        "",
        f"{result.events:,} messages ({result.bad_messages} bad) from {result.prospects:,} "
        f"prospects, {result.partitions} partitions per topic.",
        "",
        "| throughput | events/s | note |",
        "|---|---|---|",
        *[f"| {a} | {b:,} | {c} |" for a, b, c in rows],
    ]
    if f.get("latency"):
        lines += [
            "",
            "| offered events/s | events | transitions | p50 ms | p95 ms | p99 ms | max ms "
            "| drain after last send s |",
            "|---|---|---|---|---|---|---|---|",
            *[f"| {x['offered_per_second']:,} (sent {x['achieved_offer']:,}/s) | {x['events']:,} "
              f"| {x['transitions']} | {num(x.get('p50_ms'))} | {num(x.get('p95_ms'))} "
              f"| {num(x.get('p99_ms'))} | {num(x.get('max_ms'))} "
              f"| {x['drain_after_last_send_s']} |" for x in f["latency"]],
        ]  # fmt: skip
    rec = f.get("recovery")
    if rec:
        lines += [
            "",
            "| recovery | value |",
            "|---|---|",
            f"| kill -9, restart on the same data: spawn -> processing again "
            f"| {rec['restart_after_kill9_s']} s |",
            f"| empty data directory: spawn -> processing again (changelog replay) "
            f"| {rec['empty_dir_restore_s']} s, {rec['changelog_records']:,} changelog records, "
            f"{rec['changelog_records_per_s']:,} records/s |",
        ]
    lines += [
        "",
        "| memory and state | value |",
        "|---|---|",
        f"| worker RSS after the throughput run | {f['worker']['rss_mib']} MiB |",
        f"| RocksDB bytes per lead | {num(f['memory']['rocksdb_bytes_per_lead'])} |",
        f"| Redis bytes per lead | {num(f['memory']['redis_bytes_per_lead'])} |",
        f"| leads (pure core's count) | {num(f['pure_core']['leads'])} |",
        f"| state keys (leads and anonymous visitors) | {num(f['pure_core'].get('keys'))} |",
    ]
    state = f.get("state")
    if state:
        lines += [
            "",
            f"| state at {state['leads']:,} leads (seeded changelog) | value |",
            "|---|---|",
            f"| seeded records, mean size | {state['record_bytes_mean']:,} bytes |",
            f"| empty data directory: spawn -> processing again | {state['empty_dir_restore_s']} s "
            f"({state['restore_records_per_s']:,} records/s) |",
            f"| decay index rebuild | {state['due_index_line']} |",
            f"| worker RSS after restore and rebuild (peak) | {state['rss_mib']} MiB "
            f"({state['peak_rss_mib']} MiB) |",
            f"| kill -9, restart on the same data: spawn -> processing again "
            f"| {state['restart_after_kill9_s']} s |",
            f"| worker RSS after the restart's rebuild | {state['rss_mib_after_restart']} MiB |",
            f"| RocksDB bytes per lead | {state['rocksdb_bytes_per_lead']:,} |",
        ]
    if result.notes:
        lines += ["", *[f"- {n}" for n in result.notes]]
    return "\n".join(lines) + "\n"


def new_result(args: argparse.Namespace, partitions: int) -> Result:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    return Result(
        mode="quick" if args.quick else "full", command=" ".join(["python -m bench.harness",
        *sys.argv[1:]]), started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        commit=commit or "unknown", machine=machine(), versions=versions(), events=args.events,
        prospects=args.prospects, bad_messages=0, partitions=partitions,
    )  # fmt: skip


async def run(args: argparse.Namespace, result: Result) -> None:
    """The phases, filling ``result`` as they go (an abort keeps what was measured)."""
    run_id = uuid.uuid4().hex[:6]
    prefix = f"bench{run_id}."
    app_id = f"bench-{run_id}"
    redis_prefix = f"ls:bench:{run_id}:"
    settings = Settings(topic_prefix=prefix, app_id=app_id)
    say = partial(print, file=sys.stderr)
    say(f"generating {args.events:,} messages")
    messages = traffic(args.events, args.prospects, args.seed, f"b{run_id}-")
    result.events = len(messages)
    result.bad_messages = sum(1 for _, k, _ in messages if k == b"bad")

    rules = load_rules(REPO_ROOT / "rules" / "default.yaml")
    say("1/7 pure core")
    result.figures["pure_core"], replay = pure_core(messages, rules)
    templates = [dump_record(Record(state=state)) for state in replay.leads()]
    del replay
    say(f"  {result.figures['pure_core']}")

    from stream_app.app import worker_topics  # noqa: PLC0415

    await ensure_topics(settings, [*worker_topics(settings), f"{prefix}passthrough"])
    result.figures["preload_seconds"] = round(await preload(messages, prefix), 2)

    say("2/7 passthrough ceiling")
    result.figures["passthrough"] = await passthrough(prefix, len(messages))
    say(f"  {result.figures['passthrough']}")

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    say(
        f"   the worker's stages on aiokafka batches, no Faust (a design ceiling), "
        f"{min(args.batched_events, len(messages)):,} events"
    )
    result.figures["batched"] = await batched_pipeline(
        settings, rules, args.batched_events, work / "batched", BOOTSTRAP
    )
    say(f"  {result.figures['batched']}")
    log = RESULTS / f"worker-{run_id}.log.tmp"
    groups = watched(prefix, app_id)
    worker = BenchWorker(prefix, app_id, redis_prefix, work / "data", f"{app_id}-1", log,
                         args.profile)  # fmt: skip
    failed = True
    try:
        async with Kafka() as kafka:
            say("3/7 full worker on the preloaded topics")
            figures = await throughput(kafka, worker, prefix, app_id, len(messages))
            figures["events_per_second"] = round(len(messages) / figures["seconds"])
            result.figures["worker"] = figures
            # RocksDB keeps recent writes in its memtables and log: stopped, the files are
            # the state; then the worker starts again for the next phases (without py-spy)
            worker.stop()
            figures["rocksdb_bytes"] = worker.rocksdb_bytes()
            worker.profile = None
            result.figures["ratios"] = {
                "worker_vs_passthrough": figures["events_per_second"]
                / result.figures["passthrough"]["events_per_second"],
                "worker_vs_core": figures["events_per_second"]
                / result.figures["pure_core"]["events_per_second"],
            }
            if args.until == 3:
                say(f"  {figures}; stopping after phase 3 (--until 3)")
                failed = False
                return
            worker.start()
            await worker.wait_started()
            core = result.figures["pure_core"]
            redis_usage = redis_bytes_per_lead(redis_prefix)
            result.figures["memory"] = {
                "rocksdb_bytes": figures["rocksdb_bytes"],
                "rocksdb_bytes_per_lead": round(figures["rocksdb_bytes"] / core["leads"]),
                "redis_bytes_per_lead": redis_usage["bytes_per_lead"],
                "redis_leads": redis_usage["leads"],
            }
            say(f"  {figures} {result.figures['memory']}")
            # warm-up: the restarted worker rebuilds its decay index from every record first;
            # after 300 s the latency phase goes on regardless
            with contextlib.suppress(RuntimeError):
                await wait_for_log(worker, "due index rebuilt", limit_s=300)

            say(f"4/7 latency at {', '.join(map(str, args.rates))} events/s")
            result.figures["latency"] = []
            for n, rate in enumerate(args.rates):
                figure = await latency(kafka, prefix, groups, rate, args.latency_seconds,
                                       args.seed + 1 + n, f"b{run_id}-lat{rate}-")  # fmt: skip
                say(f"  {figure}")
                result.figures["latency"].append(figure)

            say("5/7 recovery: kill -9 and restart; then an empty data directory")
            result.figures["recovery"] = await recovery(kafka, worker, prefix, app_id,
                                                        work / "empty", f"b{run_id}")  # fmt: skip
            say(f"  {result.figures['recovery']}")
            worker.stop()

            say(f"6/7 scale-out: two workers on {args.scale_events:,} fresh events")
            result.figures["scale_out"] = await scale_out(kafka, args, run_id, work, log)
            result.figures["scale_out"]["vs_one_worker"] = round(
                result.figures["scale_out"]["events_per_second"] / figures["events_per_second"], 2
            )
            say(f"  {result.figures['scale_out']}")

            say(f"7/7 state at {args.state_leads:,} leads: changelog seeded from the pure "
                "core's records; empty data directory, then kill -9 and restart")  # fmt: skip
            result.figures["state"] = await state_at_scale(
                kafka, args.state_leads, templates, run_id, work, log
            )
            say(f"  {result.figures['state']}")
        failed = False
    finally:
        worker.stop()
        await drop_topics((prefix, f"bench{run_id}s.", f"bench{run_id}m.", f"{app_id}-",
                           f"{app_id}s-", f"{app_id}m-"))  # fmt: skip
        for each in (redis_prefix, f"ls:bench:{run_id}s:", f"ls:bench:{run_id}m:"):
            forget_redis(each)
        shutil.rmtree(work, ignore_errors=True)
        if failed:
            say(f"worker log kept: {log}")
        else:
            log.unlink(missing_ok=True)
    result.notes += [
        "throughput: from the worker's 'rules' start-up line (it then joins the group and "
        "restores its tables) until its consumer groups have committed every offset they read: "
        "the scoring group its inputs and internal hops, the projection's own group the score "
        "updates and transitions it writes to Redis (polled every 0.5 s; Faust commits every "
        "~2.8 s, the projection after each batch); the projection's largest backlog on the way "
        "is reported",
        "latency: fresh prospects' events produced at the offered rate; each transition's "
        "latency is from the producer's send of its triggering event to a consumer of the "
        "transitions topic receiving it",
        "recovery: spawn of the new worker process -> its score update for a probe event sent "
        "right after the spawn (static membership: LEADSTREAM_INSTANCE_ID is set)",
        "scale-out: two workers started together on freshly preloaded topics, same partitions; "
        "compared with the one-worker rate above",
        "design ceiling: bench/batched.py runs the worker's stage functions on aiokafka "
        "getmany batches over the same input topics, with the same Kafka hops, records in "
        "RocksDB and a changelog topic, score updates and transitions sent, offsets committed "
        "after each batch's acks; without the outbox order, rebalances, restore, decay sweep "
        "and Redis projection. Not the product: what a batched hot path could reach",
        "state at scale: the lead-records changelog of a fresh app is seeded with copies of "
        "the pure core's final lead records (distinct lead ids), as a worker would have "
        "written them; a worker restores them from an empty data directory (RSS read once "
        "its due index is rebuilt from every record), is killed with -9 and restarted",
    ]


async def scale_out(
    kafka: Kafka, args: argparse.Namespace, run_id: str, work: Path, log: Path
) -> dict[str, Any]:
    prefix = f"bench{run_id}s."
    app_id = f"bench-{run_id}s"
    settings = Settings(topic_prefix=prefix, app_id=app_id)
    from stream_app.app import worker_topics  # noqa: PLC0415

    messages = traffic(args.scale_events, max(100, args.scale_events // 10), args.seed + 100,
                       f"b{run_id}s-")  # fmt: skip
    await ensure_topics(settings, worker_topics(settings))
    await preload(messages, prefix)
    workers = [
        BenchWorker(
            prefix, app_id, f"ls:bench:{run_id}s:", work / f"scale-{n}", f"{app_id}-{n}", log
        )
        for n in (1, 2)
    ]
    try:
        for w in workers:
            w.start()
        for w in workers:
            await w.wait_started()
        started = min(w.started for w in workers)
        await kafka.wait_caught_up(watched(prefix, app_id), limit_s=7200)
        seconds = time.perf_counter() - started
        rss = [w.rss_mib() for w in workers]
    finally:
        for w in workers:
            w.stop()
    return {"events": len(messages), "seconds": round(seconds, 2),
            "events_per_second": round(len(messages) / seconds), "rss_mib": rss}  # fmt: skip


def seeded(templates: list[bytes], count: int, tag: str) -> Iterator[tuple[bytes, bytes]]:
    """``count`` (key, record) pairs: the templates in turn, each under a new lead id."""
    ids = [json.loads(raw)["state"]["lead_id"] for raw in templates]
    for n in range(count):
        lead = f"{tag}lead-{n:07d}"
        raw = templates[n % len(templates)].replace(f'"{ids[n % len(ids)]}"'.encode(),
                                                    f'"{lead}"'.encode())  # fmt: skip
        yield lead.encode(), raw


async def state_at_scale(
    kafka: Kafka, count: int, templates: list[bytes], run_id: str, work: Path, log: Path
) -> dict[str, Any]:
    """A worker with ``count`` leads of state: restore, memory, disk, kill -9 restart."""
    prefix = f"bench{run_id}m."
    app_id = f"bench-{run_id}m"
    settings = Settings(topic_prefix=prefix, app_id=app_id)
    from stream_app.app import table_options, worker_topics  # noqa: PLC0415

    changelog = f"{app_id}-lead-records-changelog"  # Faust's name, without our prefix
    segment = table_options(settings)["extra_topic_configs"]["segment.bytes"]
    await ensure_topics(settings, worker_topics(settings))
    await ensure_topics(settings, [changelog],
                        {"cleanup.policy": "compact", "segment.bytes": str(segment)})  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024)  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    size = 0
    try:
        pairs = seeded(templates, count, f"b{run_id}m-")
        for key, raw in tqdm(pairs, total=count, desc="seed", unit="rec", disable=None):
            size += len(raw)
            await producer.send(changelog, key=key, value=raw)
        await producer.flush()
    finally:
        await producer.stop()
    out: dict[str, Any] = {"leads": count, "seed_s": round(time.perf_counter() - started, 1),
                           "record_bytes_mean": round(size / count)}  # fmt: skip
    worker = BenchWorker(prefix, app_id, f"ls:bench:{run_id}m:", work / "state", f"{app_id}-1",
                         log)  # fmt: skip
    try:
        worker.start()
        await probe(prefix, f"b{run_id}m-empty", limit_s=3600)
        seconds = time.perf_counter() - worker.started
        out |= {"empty_dir_restore_s": round(seconds, 1),
                "restore_records_per_s": round(count / seconds)}  # fmt: skip
        rebuilt = await wait_for_log(worker, "due index rebuilt", limit_s=900)
        out |= {"due_index_line": rebuilt, "rss_mib": worker.rss_mib(),
                "peak_rss_mib": worker.peak_rss_mib()}  # fmt: skip
        worker.stop(signal.SIGKILL)
        worker.start()
        await probe(prefix, f"b{run_id}m-k9")
        out["restart_after_kill9_s"] = round(time.perf_counter() - worker.started, 1)
        await wait_for_log(worker, "due index rebuilt", limit_s=900)
        out["rss_mib_after_restart"] = worker.rss_mib()
        worker.stop()
        out["rocksdb_bytes"] = worker.rocksdb_bytes()
        out["rocksdb_bytes_per_lead"] = round(out["rocksdb_bytes"] / count)
    finally:
        worker.stop()
    return out


async def wait_for_log(worker: BenchWorker, text: str, limit_s: float) -> str:
    """The first log line of this worker run that holds ``text``."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        line = next((ln for ln in worker.log_text().splitlines() if text in ln), None)
        if line is not None:
            return line.split("[INFO] ", 1)[-1].strip()
        await asyncio.sleep(0.5)
    raise RuntimeError(f"worker did not log {text!r} within {limit_s:.0f}s; see {worker.log}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="20,000 events over 2,000 prospects")
    parser.add_argument("--events", type=int, help="messages to send (default 1,000,000)")
    parser.add_argument("--prospects", type=int, help="simulated prospects (default 100,000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--rates",
        type=lambda v: [int(x) for x in v.split(",")],
        help="offered loads for the latency phase, events/s, comma-separated "
        "(default 250,1000 quick; 250,500,1000,5000 full)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        help="how long each offered load runs (default 6 quick, 15 full)",
    )
    parser.add_argument(
        "--scale-events",
        type=int,
        help="events for the two-worker phase (default 10,000 quick, 100,000 full)",
    )
    parser.add_argument(
        "--batched-events",
        type=int,
        help="input messages for the design ceiling without Faust (default: all quick, "
        "200,000 full)",
    )
    parser.add_argument(
        "--state-leads",
        type=int,
        help="leads of seeded state for the last phase (default 20,000 quick, 1,000,000 full)",
    )
    parser.add_argument("--until", type=int, choices=[3, 7], default=7,
                        help="3: stop after the full worker's throughput (for profiles and "
                             "experiments; the result's mode gets '-partial')")  # fmt: skip
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="run the worker under py-spy (pip install py-spy); "
                             "write its collapsed stacks to FILE")  # fmt: skip
    args = parser.parse_args()
    args.events = args.events or (20_000 if args.quick else 1_000_000)
    args.prospects = args.prospects or (2_000 if args.quick else 100_000)
    args.rates = args.rates or ([250, 1000] if args.quick else [250, 500, 1000, 5000])
    args.latency_seconds = args.latency_seconds or (6.0 if args.quick else 15.0)
    args.scale_events = args.scale_events or (10_000 if args.quick else 100_000)
    args.state_leads = args.state_leads or (20_000 if args.quick else 1_000_000)
    args.batched_events = args.batched_events or (args.events if args.quick else 200_000)
    if not kafka_answers(9092):
        raise SystemExit("Kafka does not answer on 127.0.0.1:9092: run `make stack-up` first")
    result = new_result(args, Settings().topic_partitions)
    if args.until < 7:
        result.mode += "-partial"
    status = 0
    try:
        asyncio.run(run(args, result))
    except (Exception, KeyboardInterrupt) as exc:  # keep what was measured before the abort
        result.notes.append(f"ABORTED: {type(exc).__name__}: {exc}")
        result.mode += "-aborted"
        status = 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{result.started_at.replace(':', '')}-{result.mode}"
    stem.with_suffix(".json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    try:
        text = render(result)
    except KeyError:  # a phase is missing: the figures as measured
        text = (f"# Benchmark ({result.mode}), {result.started_at}\n\n`{result.command}` at "
                f"commit {result.commit}\n\n```json\n{json.dumps(result.figures, indent=2)}\n"
                "```\n\n" + "\n".join(f"- {n}" for n in result.notes) + "\n")  # fmt: skip
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {stem}.json and .md", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
