"""Recovery: kill -9 and restart the keyed worker on the same data; then a worker on an
empty data directory (changelog replay): seconds from spawn until a probe is scored."""

from __future__ import annotations

import signal
import time
from typing import Any

from bench.context import Run
from bench.procs import probe
from bench.topology import changelogs


async def run(run: Run) -> None:
    worker = await run.keyed_worker()
    prefix, tag = run.prefix(), f"b{run.run_id}"
    out: dict[str, Any] = {}
    worker.stop(signal.SIGKILL)
    worker.start()
    spawn = worker.started
    seconds_to_probe = await probe(prefix, f"{tag}-k9")
    out["restart_after_kill9_s"] = round(time.perf_counter() - spawn, 1)
    out["restart_probe_wait_s"] = round(seconds_to_probe, 1)
    worker.stop()
    logs = await changelogs(run.kafka, run.app_id())
    records = sum((await run.kafka.ends(logs)).values()) if logs else 0
    worker.move_data(run.work / "worker-k-empty")
    worker.start()
    spawn = worker.started
    await probe(prefix, f"{tag}-empty", limit_s=3600)  # a changelog replay can take long
    seconds = time.perf_counter() - spawn
    out |= {
        "empty_dir_restore_s": round(seconds, 1),
        "changelog_records": records,
        "changelog_records_per_s": round(records / seconds),
        "changelogs": logs,
    }
    worker.stop()
    run.figures["recovery"] = out
