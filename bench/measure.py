"""One way to time a Faust process on preloaded topics, for the worker and the bare agents."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import Kafka, Progress, Watched
from bench.cpu import Meter
from bench.procs import BenchProcess


async def until_committed(
    kafka: Kafka,
    proc: BenchProcess,
    groups: Watched,
    inputs: list[str],
    total: int,
    desc: str,
    limit_s: float = 7200,
) -> dict[str, Any]:
    """Start ``proc``; from its clock mark until every group in ``groups`` has committed every
    offset of its topics (polled every 0.5 s; Faust commits every ~2.8 s).

    The first group is the process's own (for the worker: inputs and internal topics); any
    other groups (the worker's Redis projection) are reported as a backlog. Also reported:
    when the first group alone was done (``scored_s``), and ``steady_events_per_second``:
    the ``inputs`` still uncommitted at the first commit that moved them, over the time
    from that commit until the first group was done (internal topics included), which
    leaves out start-up, group join and restore. ``cpu_us_per_event`` (``bench/cpu.py``):
    CPU of the process, its children, the broker and Redis over the same window, per event.
    """
    proc.start()
    started = await proc.wait_started()
    meter = Meter(proc.pid)  # CPU of the process, its children, the broker, Redis (bench/cpu.py)
    meter.start()
    (own, own_topics), others = groups[0], groups[1:]
    scored: float | None = None
    first: tuple[float, int] | None = None  # (time, input lag) at the first input commit
    done: float | None = None  # when the first group had committed everything
    backlog = 0
    with Progress(desc) as bar:
        while True:
            if time.perf_counter() - started > limit_s:
                raise RuntimeError(f"group {own} did not catch up within {limit_s:.0f}s")
            if not proc.running:
                raise RuntimeError(f"{' '.join(proc.args)} exited; see {proc.log}")
            own_lag = await kafka.lag(own, own_topics)
            input_lag = await kafka.lag(own, inputs)
            other_lag = sum([await kafka.lag(g, t) for g, t in others])
            now = time.perf_counter()  # the lags were read by now (the commits were earlier)
            bar.remaining(own_lag + other_lag)
            backlog = max(backlog, other_lag)
            if first is None and input_lag < total:
                first = (now, input_lag)
            if own_lag == 0 and scored is None:
                done, scored = now, now - started
            if own_lag == 0 and other_lag == 0:
                break
            await asyncio.sleep(0.5)
    seconds = now - started
    cpu = meter.stop(total)
    assert scored is not None
    out: dict[str, Any] = {
        "seconds": round(seconds, 2),
        "events": total,
        "events_per_second": round(total / seconds),
        "scored_s": round(scored, 2),
        "scored_events_per_second": round(total / scored),
    }
    if others:
        out["projection_backlog_max"] = backlog
    steady = None
    if first is not None and done is not None and done > first[0]:
        steady = round(first[1] / (done - first[0]))
    out["steady_events_per_second"] = steady
    out["rss_mib"] = proc.rss_mib()
    out |= cpu
    return out
