"""The full worker (``python -m stream_app worker``) on preloaded topics: subject-keyed
input (the run's preload) and the same messages without keys (fresh topics and app).

Timed from the worker's start-up line until its consumer groups have committed every
offset they read (``bench.measure.until_committed``); its transitions are then read
back and compared by id with the pure core's.
"""

from __future__ import annotations

from typing import Any

from bench.common import compare_transitions, preload, redis_bytes_per_lead, transition_ids
from bench.common import unkeyed as strip_keys
from bench.context import Run
from bench.measure import until_committed
from bench.phases.pure_core import replay
from bench.topology import all_topics, watched
from stream_app.kafka import ensure_topics
from stream_app.topics import TopicNames


async def throughput(run: Run, tag: str, total: int, expected: set[str]) -> dict[str, Any]:
    settings = run.settings(tag)
    worker = run.new_worker(tag, profile=run.args.profile if tag == "k" else None)
    if tag == "k":
        run.worker = worker
    inputs = list(TopicNames(settings.topic_prefix).inputs)
    try:
        desc = f"worker ({'keyed' if tag == 'k' else 'unkeyed'})"
        figures = await until_committed(
            run.kafka, worker, watched(settings), inputs, total, desc=desc
        )
    finally:
        # RocksDB keeps recent writes in its memtables and log: stopped, the files are the
        # state; the keyed worker starts again (without py-spy) for the phases after it
        worker.stop()
        worker.profile = None
    figures["rocksdb_bytes"] = worker.rocksdb_bytes()
    received = transition_ids(
        await run.kafka.read_all(TopicNames(settings.topic_prefix).transitions)
    )
    figures |= compare_transitions(expected, received)
    return figures


async def keyed(run: Run) -> None:
    figures = await throughput(run, "k", len(run.messages), run.expected)
    run.figures["worker"] = figures
    leads = run.figures.get("pure_core", {}).get("leads")
    redis_usage = redis_bytes_per_lead(run.redis_prefix("k"))
    run.figures["memory"] = {
        "worker_rss_mib": figures["rss_mib"],
        "rocksdb_bytes": figures["rocksdb_bytes"],
        "rocksdb_bytes_per_lead": round(figures["rocksdb_bytes"] / leads) if leads else None,
        "redis_bytes_per_lead": redis_usage["bytes_per_lead"],
        "redis_leads": redis_usage["leads"],
    }


async def unkeyed(run: Run) -> None:
    count = min(run.args.unkeyed_events, len(run.messages))
    messages = strip_keys(run.messages[:count])
    expected = run.expected
    if count < len(run.messages):  # the oracle for the shorter prefix of the same traffic
        _, _, expected = replay(run.messages[:count], run.rules)
    settings = run.settings("u")
    await ensure_topics(settings, all_topics(settings))
    run.figures["preload_unkeyed_seconds"] = round(
        await preload(messages, settings.topic_prefix, "preload unkeyed"), 2
    )
    run.figures["worker_unkeyed"] = await throughput(run, "u", count, expected)
