"""Scale-out: two workers started together on freshly preloaded topics (same partitions)."""

from __future__ import annotations

import time

from bench.common import preload, traffic
from bench.context import Run
from bench.topology import all_topics, watched
from stream_app.kafka import ensure_topics


async def run(run: Run) -> None:
    args = run.args
    settings = run.settings("s")
    messages = traffic(
        args.scale_events, max(100, args.scale_events // 10), args.seed + 100, f"b{run.run_id}s-"
    )
    await ensure_topics(settings, all_topics(settings))
    await preload(messages, settings.topic_prefix, "preload scale-out")
    workers = [run.new_worker("s", data=f"-{n}", instance=n) for n in (1, 2)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            await w.wait_started()
        started = min(w.started for w in workers)
        await run.kafka.wait_caught_up(watched(settings), limit_s=7200, desc="two workers")
        seconds = time.perf_counter() - started
        rss = [w.rss_mib() for w in workers]
    finally:
        for w in workers:
            w.stop()
    out = {
        "events": len(messages),
        "seconds": round(seconds, 2),
        "events_per_second": round(len(messages) / seconds),
        "rss_mib": rss,
    }
    one = run.figures.get("worker", {}).get("events_per_second")
    out["vs_one_worker"] = round(out["events_per_second"] / one, 2) if one else None
    run.figures["scale_out"] = out
