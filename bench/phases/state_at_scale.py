"""State at scale: a fresh app's ``lead-records`` changelog seeded with ``--state-leads``
copies of the pure core's final lead records (distinct lead ids), as a worker would have
written them; a worker restores them from an empty data directory (RSS read once its
decay index is rebuilt from every record), is killed with -9 and restarted.

The restore runs twice on the same changelog and broker, each from an empty data
directory: first through Faust's own recovery (``LEADSTREAM_BULK_RESTORE=false``), then
through the bulk restore (``stream_app/worker/restore.py``), so their records/s compare
in one run (``faust_restore_*`` and ``empty_dir_restore_s`` / ``restore_records_per_s``).

The one phase that knows the worker's stored record and its table's name: adapt
``templates`` and ``CHANGELOG`` here when they change.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from bench.common import BOOTSTRAP
from bench.context import Run
from bench.cpu import Meter
from bench.procs import probe
from bench.topology import DUE_INDEX, all_topics
from stream_app.codec import encode_record
from stream_app.kafka import ensure_topics
from stream_app.messages import Record
from stream_app.scoring.state import LeadState

CHANGELOG = "{app_id}-lead-records-changelog"  # Faust's name, without our prefix


def templates(replay: Any) -> list[LeadState]:
    """The pure core's final lead states."""
    return list(replay.leads())


def seeded(states: list[LeadState], count: int, tag: str) -> Iterator[tuple[bytes, bytes]]:
    """``count`` (key, record) pairs: the templates in turn, each under a new lead id,
    encoded as the worker stores them (``codec.encode_record``)."""
    for n in range(count):
        lead = f"{tag}lead-{n:07d}"
        state = dataclasses.replace(states[n % len(states)], key=lead, lead_id=lead)
        yield lead.encode(), encode_record(Record.of(state))


async def run(run: Run) -> None:
    from stream_app.worker.app import table_options  # noqa: PLC0415

    count = run.args.state_leads
    records = templates(run.replay)
    run.replay = None
    settings = run.settings("m")
    prefix, tag = settings.topic_prefix, f"b{run.run_id}m-"
    changelog = CHANGELOG.format(app_id=settings.app_id)
    segment = table_options(settings)["extra_topic_configs"]["segment.bytes"]
    await ensure_topics(settings, all_topics(settings))
    await ensure_topics(
        settings, [changelog], {"cleanup.policy": "compact", "segment.bytes": str(segment)}
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    size = 0
    try:
        for key, raw in tqdm(
            seeded(records, count, tag), total=count, desc="seed", unit="rec", disable=None
        ):
            size += len(raw)
            await producer.send(changelog, key=key, value=raw)
        await producer.flush()
    finally:
        await producer.stop()
    out: dict[str, Any] = {
        "leads": count,
        "seed_s": round(time.perf_counter() - started, 1),
        "record_bytes_mean": round(size / count),
    }
    run.figures["state"] = out
    faust = run.new_worker("m", data="-faust")
    faust.env["LEADSTREAM_BULK_RESTORE"] = "false"
    try:
        out |= await restore(faust, prefix, f"{tag}faust", count, "faust_")
        faust.stop(signal.SIGKILL)  # before: kill -9 and restart with Faust's recovery
        faust.start()
        await probe(prefix, f"{tag}faustk9")
        out["faust_restart_after_kill9_s"] = round(time.perf_counter() - faust.started, 1)
    finally:
        faust.stop()
    worker = run.new_worker("m")
    try:
        out |= await restore(worker, prefix, f"{tag}empty", count, "")
        out["restore_bulk_vs_faust"] = round(
            out["restore_records_per_s"] / out["faust_restore_records_per_s"], 2
        )
        if out["restore_only_s"] and out["faust_restore_only_s"]:
            out["restore_only_bulk_vs_faust"] = round(
                out["faust_restore_only_s"] / out["restore_only_s"], 2
            )
        out["bulk_restore_line"] = await worker.wait_for_log("bulk restore of active", 60)
        rebuilt = await worker.wait_for_log(DUE_INDEX, limit_s=900)
        out |= {
            "due_index_line": rebuilt,
            "rss_mib": worker.rss_mib(),
            "peak_rss_mib": worker.peak_rss_mib(),
        }
        worker.stop(signal.SIGKILL)
        worker.start()
        await probe(prefix, f"{tag}k9")
        out["restart_after_kill9_s"] = round(time.perf_counter() - worker.started, 1)
        await worker.wait_for_log(DUE_INDEX, limit_s=900)
        out["rss_mib_after_restart"] = worker.rss_mib()
        worker.stop()
        out["rocksdb_bytes"] = worker.rocksdb_bytes()
        out["rocksdb_bytes_per_lead"] = round(out["rocksdb_bytes"] / count)
    finally:
        worker.stop()


def logged_at(line: str) -> datetime:
    """The time of a worker log line (``[2026-12-08 00:58:52,669] ...``)."""
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)


def restore_seconds(log: str) -> float | None:
    """From the recovery's start (Faust logs the active partitions' high watermarks) to its
    "Restore complete!": the restore itself, without start-up, group join and probe."""
    lines = log.splitlines()
    start = next((ln for ln in lines if "Highwater for active changelog" in ln), None)
    end = next((ln for ln in lines if "Restore complete!" in ln), None)
    if start is None or end is None:
        return None
    return round((logged_at(end) - logged_at(start)).total_seconds(), 1)


async def restore(worker: Any, prefix: str, tag: str, count: int, name: str) -> dict[str, Any]:
    """Spawn -> a probe event scored, from an empty data directory; the restore alone (from
    the worker's log); the process's CPU from its spawn (start-up included: its clock mark
    is logged only after the restore); RSS and peak RSS once the due index was rebuilt
    from every record (``name``: the figures' prefix)."""
    worker.start()
    meter = Meter(worker.pid)
    meter.start()
    await probe(prefix, tag, limit_s=3600)
    seconds = time.perf_counter() - worker.started
    cpu = meter.stop(count)
    await worker.wait_for_log(DUE_INDEX, limit_s=900)
    restored = restore_seconds(worker.new_log_text())
    return {
        f"{name}empty_dir_restore_s": round(seconds, 1),
        f"{name}restore_records_per_s": round(count / seconds),
        f"{name}restore_only_s": restored,
        f"{name}restore_only_records_per_s": round(count / restored) if restored else None,
        f"{name}restore_cpu_us_per_record": cpu["cpu_us_per_event"],
        f"{name}restore_machine": cpu["machine"],
        f"{name}rss_mib_after_due_index": worker.rss_mib(),
        f"{name}peak_rss_mib": worker.peak_rss_mib(),
    }
