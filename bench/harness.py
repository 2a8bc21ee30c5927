"""Benchmark harness: the live worker beside its ceilings, on the real local stack.

    python -m bench.harness --quick          # 20,000 events (make bench-quick)
    python -m bench.harness                  # 1,000,000 events over 100,000 prospects

Every figure is measured in the same run as its baseline, on the same seeded
events (skewed activity, the real mix of event types, identify merges, one
bad message in a thousand):

- pure core: decode + identity + scoring in one process (``Replay``), no Kafka;
- passthrough ceiling: a raw aiokafka consumer -> JSON decode -> producer over
  the same preloaded topics and partitions;
- full worker: ``python -m stream_app worker`` from ready until its consumer
  group has committed every input and internal offset;
- memory: worker RSS, RocksDB bytes per lead, Redis bytes per lead.

Results go to ``bench/results/<UTC time>-<mode>.json`` and ``.md`` with the
command, git commit, machine and library versions. Latency at steady load,
recovery after kill -9 and scale-out are not measured by this harness yet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tqdm import tqdm

from schemas.dead_letter import DeadLetter
from stream_app.codec import decode
from stream_app.config import REPO_ROOT, Settings
from stream_app.devstack import kafka_answers, kafka_version
from stream_app.kafka import ensure_topics
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import load_rules
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
    out = []
    names = TopicNames()
    for n, event in enumerate(generate(prospects, seed, id_prefix=prefix)):
        if len(out) >= events:
            break
        key = (event.get("lead_id") or event.get("anonymous_id")).encode()
        out.append((names.input_for(event["type"]), key, json.dumps(event).encode()))
        if n % 1000 == 999 and len(out) < events:
            out.append(("page_views", b"bad", b'{"type": "page_view", "event_id": 1}'))
    return out


def pure_core(messages: list[tuple[str, bytes, bytes]]) -> dict[str, Any]:
    replay = Replay(load_rules(REPO_ROOT / "rules" / "default.yaml"))
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
    return {"seconds": round(seconds, 2), "events_per_second": round(len(messages) / seconds),
            "leads": leads, "dead_letters": bad}  # fmt: skip


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


async def group_lag(
    admin: AIOKafkaAdminClient, meta: AIOKafkaProducer, group: str, topics: list[str]
) -> int:
    """Messages in ``topics`` that ``group`` has not committed yet."""
    partitions = [TopicPartition(t, p) for t in topics for p in await meta.partitions_for(t)]
    probe = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await probe.start()
    try:
        ends = await probe.end_offsets(partitions)
    finally:
        await probe.stop()
    committed = await admin.list_consumer_group_offsets(group)
    return sum(max(0, end - (committed[tp].offset if tp in committed else 0))
               for tp, end in ends.items())  # fmt: skip


def child_pid(pid: int) -> int:
    """The first child of ``pid`` (the worker under py-spy)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


async def full_worker(
    prefix: str, run_id: str, data_dir: Path, log: Path, profile: Path | None = None
) -> dict[str, Any]:
    app_id = f"bench-{run_id}"
    env = {**os.environ, "LEADSTREAM_TOPIC_PREFIX": prefix, "LEADSTREAM_APP_ID": app_id,
           "LEADSTREAM_DATA_DIR": str(data_dir),
           "LEADSTREAM_REDIS_KEY_PREFIX": f"ls:bench:{run_id}:",
           "LEADSTREAM_SWEEP_INTERVAL_SECONDS": "3600"}  # fmt: skip
    names = TopicNames(prefix)
    watched = [
        *names.inputs,
        f"{prefix}{app_id}-identity-events",
        f"{prefix}{app_id}-scoring-events",
    ]
    with open(log, "ab") as out:
        command = [sys.executable, "-m", "stream_app", "worker"]
        if profile is not None:  # py-spy samples the worker; collapsed stacks for flamegraphs
            spy = str(Path(sys.executable).parent / "py-spy")
            command = [spy, "record", "--format", "raw", "-r", "50", "-o", str(profile), "--",
                       *command]  # fmt: skip
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    meta = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)  # its partitions_for waits for metadata
    await admin.start()
    await meta.start()
    try:
        while "Leadstream worker: rules" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {log}")
            await asyncio.sleep(0.1)
        started = time.perf_counter()
        while True:
            await asyncio.sleep(0.5)
            lag = await group_lag(admin, meta, app_id, watched)
            if lag == 0:
                break
        seconds = time.perf_counter() - started
        worker_pid = proc.pid if profile is None else child_pid(proc.pid)
        rss_kb = int(next(line.split()[1] for line in
                          Path(f"/proc/{worker_pid}/status").read_text().splitlines()
                          if line.startswith("VmRSS")))  # fmt: skip
    finally:
        await admin.close()
        await meta.stop()
        if profile is not None:  # stop the worker; py-spy writes its file and exits
            with contextlib.suppress(ProcessLookupError, FileNotFoundError, StopIteration):
                os.kill(child_pid(proc.pid), 15)
        else:
            proc.terminate()
        proc.wait(timeout=60)
    rocksdb = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())
    return {"seconds": round(seconds, 2), "rss_mib": round(rss_kb / 1024, 1),
            "rocksdb_bytes": rocksdb}  # fmt: skip


def redis_bytes_per_lead(run_id: str) -> dict[str, Any]:
    client = redis.Redis.from_url(Settings().redis_url)
    prefix = f"ls:bench:{run_id}:"
    leads = client.scard(f"{prefix}leads")
    total = 0
    keys = list(client.scan_iter(match=f"{prefix}*", count=5000))
    for key in keys:
        total += client.memory_usage(key) or 0
    client.delete(*keys) if keys else None
    client.close()
    return {
        "leads": leads,
        "bytes": total,
        "bytes_per_lead": round(total / leads) if leads else None,
    }


def render(result: Result) -> str:
    f = result.figures
    rows = [
        ("pure core (Replay, one process)", f["pure_core"]["events_per_second"], ""),
        ("passthrough ceiling (aiokafka)", f["passthrough"]["events_per_second"], ""),
        ("full worker", f["worker"]["events_per_second"],
         f"{f['ratios']['worker_vs_passthrough']:.1%} of passthrough, "
         f"{f['ratios']['worker_vs_core']:.1%} of core"),
    ]  # fmt: skip

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{value:,}"

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
        f"{result.events} messages ({result.bad_messages} bad) from {result.prospects} prospects, "
        f"{result.partitions} partitions per topic.",
        "",
        "| what | events/s | note |",
        "|---|---|---|",
        *[f"| {a} | {b:,} | {c} |" for a, b, c in rows],
        "",
        "| memory and state | value |",
        "|---|---|",
        f"| worker RSS at the end | {f['worker']['rss_mib']} MiB |",
        f"| RocksDB bytes per lead | {num(f['memory']['rocksdb_bytes_per_lead'])} |",
        f"| Redis bytes per lead | {num(f['memory']['redis_bytes_per_lead'])} |",
        f"| leads | {num(f['pure_core']['leads'])} |",
    ]
    if result.notes:
        lines += ["", *[f"- {n}" for n in result.notes]]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> Result:
    run_id = uuid.uuid4().hex[:6]
    prefix = f"bench{run_id}."
    settings = Settings(topic_prefix=prefix, app_id=f"bench-{run_id}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    result = Result(
        mode="quick" if args.quick else "full", command=" ".join(["python -m bench.harness",
        *sys.argv[1:]]), started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        commit=commit or "unknown", machine=machine(), versions=versions(), events=args.events,
        prospects=args.prospects, bad_messages=0, partitions=settings.topic_partitions,
    )  # fmt: skip
    print(f"generating {args.events} messages", file=sys.stderr)
    messages = traffic(args.events, args.prospects, args.seed, f"b{run_id}-")
    result.events = len(messages)
    result.bad_messages = sum(1 for _, k, _ in messages if k == b"bad")

    print("pure core", file=sys.stderr)
    result.figures["pure_core"] = pure_core(messages)

    from stream_app.app import worker_topics  # noqa: PLC0415

    await ensure_topics(settings, [*worker_topics(settings), f"{prefix}passthrough"])
    result.figures["preload_seconds"] = round(await preload(messages, prefix), 2)

    print("passthrough ceiling", file=sys.stderr)
    result.figures["passthrough"] = await passthrough(prefix, len(messages))

    print("full worker", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        log = RESULTS / f"worker-{run_id}.log.tmp"
        worker = await full_worker(prefix, run_id, Path(tmp) / "data", log, args.profile)
        log.unlink(missing_ok=True)
    worker["events_per_second"] = round(len(messages) / worker["seconds"])
    result.figures["worker"] = worker
    leads = result.figures["pure_core"]["leads"]
    redis_usage = redis_bytes_per_lead(run_id)
    result.figures["memory"] = {
        "rocksdb_bytes_per_lead": round(worker["rocksdb_bytes"] / leads) if leads else None,
        "redis_bytes_per_lead": redis_usage["bytes_per_lead"],
        "redis_leads": redis_usage["leads"],
    }
    result.figures["ratios"] = {
        "worker_vs_passthrough": worker["events_per_second"]
        / result.figures["passthrough"]["events_per_second"],
        "worker_vs_core": worker["events_per_second"]
        / result.figures["pure_core"]["events_per_second"],
    }
    result.notes.append(
        "worker time runs from its 'rules' start-up line until its consumer group has committed "
        "every input and internal offset (polled every 0.5 s; commits every ~2.8 s)"
    )
    result.notes.append("not measured by this harness yet: latency, recovery, scale-out (#5)")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="20,000 events over 2,000 prospects")
    parser.add_argument("--events", type=int, help="messages to send (default 1,000,000)")
    parser.add_argument("--prospects", type=int, help="simulated prospects (default 100,000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="run the worker under py-spy (pip install py-spy); "
                             "write its collapsed stacks to FILE")  # fmt: skip
    args = parser.parse_args()
    args.events = args.events or (20_000 if args.quick else 1_000_000)
    args.prospects = args.prospects or (2_000 if args.quick else 100_000)
    if not kafka_answers(9092):
        raise SystemExit("Kafka does not answer on 127.0.0.1:9092: run `make stack-up` first")
    result = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{result.started_at.replace(':', '')}-{result.mode}"
    stem.with_suffix(".json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    stem.with_suffix(".md").write_text(render(result))
    print(render(result))
    print(f"wrote {stem}.json and .md", file=sys.stderr)
    shutil.rmtree(REPO_ROOT / ".stack" / "bench-tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
