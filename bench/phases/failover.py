"""Failover with a standby replica: two workers on the state phase's seeded changelog
with ``LEADSTREAM_TABLE_STANDBY_REPLICAS=1``; one is killed with -9, and the seconds from
the kill until a probe event on every partition is scored are the failover.

Each worker holds its own partitions active and the other's as a standby, fed from the
changelog (the records the worker writes around Faust's table path go to the same
changelog), so the survivor takes the dead worker's partitions over without restoring
them. With static membership (``LEADSTREAM_INSTANCE_ID``) the group waits
``LEADSTREAM_SESSION_TIMEOUT_SECONDS`` (10 s) before it moves them: the floor of the
figure. Runs after the state phase (its app ``m``); alone it seeds nothing and stops.
"""

from __future__ import annotations

import asyncio
import signal
import time
from itertools import count
from typing import Any

from bench.common import say
from bench.context import Run
from bench.procs import probe
from stream_app.worker.pipeline import partition_of


def probe_tags(tag: str, partitions: int) -> list[str]:
    """One probe tag per partition: ``probe`` sends lead ``<tag>-probe``."""
    found: dict[int, str] = {}
    for n in count():
        candidate = f"{tag}{n}"
        found.setdefault(partition_of(f"{candidate}-probe", partitions), candidate)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise AssertionError("unreachable")


async def run(run: Run) -> None:
    if "state" not in run.figures:
        say("  failover: needs the state phase's seeded changelog; skipped")
        return
    settings = run.settings("m")
    prefix, tag = settings.topic_prefix, f"b{run.run_id}f"
    standby = {"LEADSTREAM_TABLE_STANDBY_REPLICAS": "1"}
    workers = [run.new_worker("m", data=f"-failover{n}", instance=n + 10) for n in (1, 2)]
    out: dict[str, Any] = {"standby_replicas": 1, "partitions": settings.topic_partitions}
    try:
        for worker in workers:
            worker.env.update(standby)
            worker.start()
        for worker in workers:
            await worker.wait_ready_async(1800)
        # both ready after the last rebalance: actives restored, standbys read up to the end
        warm = await asyncio.gather(
            *[probe(prefix, t) for t in probe_tags(f"{tag}w", settings.topic_partitions)]
        )
        out["warm_probe_max_s"] = round(max(warm), 2)
        await asyncio.sleep(5)  # the survivor's standby reads the probes' records too
        killed = time.perf_counter()
        workers[1].stop(signal.SIGKILL)
        waits = await asyncio.gather(
            *[
                probe(prefix, t, limit_s=600)
                for t in probe_tags(f"{tag}k", settings.topic_partitions)
            ]
        )
        out["standby_s"] = round(time.perf_counter() - killed, 1)
        out["probe_s_by_partition"] = [round(w, 1) for w in waits]
        out["survivor_log"] = [
            line
            for line in workers[0].new_log_text().splitlines()
            if "bulk restore of" in line or "Restoring state" in line
        ][-4:]
        out["survivor_rss_mib"] = workers[0].rss_mib()
    finally:
        for worker in workers:
            worker.stop()
    run.figures["failover"] = out
