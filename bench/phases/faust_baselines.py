"""Bare Faust agents with the worker's Faust settings, on the keyed preload.

``faust_count`` only counts; ``faust_floor`` is the worker's minimal shape (one table
write and one send per message). Each is a process of its own (``bench/faust_agents.py``)
timed exactly as the worker is (``bench.measure.until_committed``).
"""

from __future__ import annotations

from typing import Any

from bench import faust_agents
from bench.common import say
from bench.context import Run
from bench.measure import until_committed
from bench.procs import BenchProcess
from stream_app.topics import TopicNames


async def agent(run: Run, kind: str, n: int) -> dict[str, Any]:
    tag = f"{kind[0]}{n}"  # c1, f1, c2...: a fresh group and data directory each time
    app_id, prefix = run.app_id(tag), run.prefix()
    proc = BenchProcess(
        ["bench.faust_agents", kind],
        faust_agents.CLOCK_MARK,
        prefix=prefix,
        app_id=app_id,
        data_dir=run.work / f"faust-{kind}",
        instance=f"{app_id}-1",
        log=run.log(f"faust-{kind}"),
    )
    inputs = list(TopicNames(prefix).inputs)
    try:
        figures = await until_committed(
            run.kafka, proc, [(app_id, inputs)], inputs, len(run.messages), desc=f"faust {kind}"
        )
    finally:
        proc.stop()
    if kind == "floor":
        figures["sent"] = sum((await run.kafka.ends([faust_agents.out_topic(prefix)])).values())
        figures["rocksdb_bytes"] = proc.rocksdb_bytes()
    return figures


async def measure(run: Run, kind: str) -> None:
    """``--faust-runs`` runs; the figures of the median run, with every run's rate."""
    runs = []
    for n in range(1, run.args.faust_runs + 1):
        runs.append(await agent(run, kind, n))
        say(f"  {kind} run {n}: {runs[-1]}")
    rates = [r["events_per_second"] for r in runs]
    median = sorted(runs, key=lambda r: r["events_per_second"])[(len(runs) - 1) // 2]
    run.figures[f"faust_{kind}"] = {**median, "runs_events_per_second": rates}


async def count(run: Run) -> None:
    await measure(run, "count")


async def floor(run: Run) -> None:
    await measure(run, "floor")
