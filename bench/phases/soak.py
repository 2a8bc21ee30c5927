"""Soak: load held, not only faults survived. Fresh prospects' events offered for
``--soak-seconds`` (30 min full) to the running keyed worker at ``--soak-fraction`` (half)
of the events/s the same run's keyed worker phase measured.

Reported, never asserted: RSS of the worker and of its projector child every
``SAMPLE_S`` (start, end, the least-squares slope in MiB per hour over the samples after
the first window, which holds the warm-up), the consumer lag of the worker's groups
(p99, max, end), and per ``--soak-window`` (5 min full) window of send time the
latency from the producer's send to the transition received (p50/p99/max). Memory
should stay flat past the record cache's bound (``LEADSTREAM_RECORD_CACHE_SIZE``
records) and latency should not climb from one window to the next.

The events are the traffic generator's, with the prospects' first touches 200 days
before the phase starts and any event dated after its start left out: the worker
bounds event time by the time a record reached it, so generated events from the
future would be dead letters, not load.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from bench.common import (
    BOOTSTRAP,
    latency_figures,
    percentile,
    say,
    subject_key,
    watch_from_end,
)
from bench.context import Run, note
from bench.topology import watched
from stream_app.config import Settings
from stream_app.topics import TopicNames
from tools.traffic import generate

SAMPLE_S = 10.0  # RSS and lag sampled this often
EVENTS_PER_PROSPECT = 8  # about what the generator gives a prospect


def soak_events(
    count: int, seed: int, tag: str, now: datetime, prospects: int | None = None
) -> Iterator[dict[str, Any]]:
    """``count`` events of fresh prospects (``count / 8`` unless given), generated lazily,
    none dated after ``now``."""
    start = now - timedelta(days=200)
    limit = now.isoformat().replace("+00:00", "Z")
    prospects = prospects or max(50, count // EVENTS_PER_PROSPECT)
    sent = 0
    for event in generate(prospects, seed, start=start, id_prefix=tag):
        if sent >= count:
            return
        if event["occurred_at"] <= limit:  # ISO strings of one format compare as times
            sent += 1
            yield event


def rss_mib(pid: int) -> float | None:
    """VmRSS of ``pid`` in MiB, or None when the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    kb = next((int(ln.split()[1]) for ln in status if ln.startswith("VmRSS:")), None)
    return None if kb is None else round(kb / 1024, 1)


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points, in MiB per hour; None under 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return round(sxy / sxx * 3600, 2)


def windows(
    latencies: list[tuple[float, float]], width: float, seconds: float
) -> list[dict[str, Any]]:
    """Per window of send time (seconds from the start): transitions and p50/p99/max ms."""
    out = []
    for n in range(max(1, int(-(-seconds // width)))):
        lo, hi = n * width, (n + 1) * width
        values = [lat for at, lat in latencies if lo <= at < hi]
        out.append({"from_s": round(lo), "transitions": len(values), **latency_figures(values)})
    return out


class Sampler:
    """RSS of the worker and its children, and the lag of its groups, every ``SAMPLE_S``."""

    def __init__(self, run: Run, settings: Settings, started: float) -> None:
        self.run = run
        self.groups = watched(settings)
        self.started = started
        self.worker: list[tuple[float, float]] = []
        self.projector: list[tuple[float, float]] = []
        self.lag: list[int] = []

    async def loop(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(SAMPLE_S)

    async def sample(self) -> None:
        worker = self.run.worker
        assert worker is not None  # the phase started it
        at = time.perf_counter() - self.started
        if (mib := rss_mib(worker.pid)) is not None:
            self.worker.append((at, mib))
        kids = [m for c in children(worker.pid) if (m := rss_mib(c)) is not None]
        if kids:
            self.projector.append((at, sum(kids)))
        self.lag.append(await self.run.kafka.total_lag(self.groups))


def memory(points: list[tuple[float, float]], warm_up_s: float, name: str) -> dict[str, Any]:
    if not points:
        return {}
    settled = [p for p in points if p[0] >= warm_up_s]
    return {
        f"{name}_rss_start_mib": points[0][1],
        f"{name}_rss_end_mib": points[-1][1],
        f"{name}_rss_max_mib": max(m for _, m in points),
        f"{name}_rss_slope_mib_per_hour": slope_per_hour(settled),
    }


async def run(run: Run) -> None:
    measured = (run.figures.get("worker") or {}).get("events_per_second")
    if run.args.soak_rate:
        rate = float(run.args.soak_rate)
    elif measured:
        rate = round(measured * run.args.soak_fraction, 1)
    else:
        note(run, "soak: skipped; the worker phase did not run and --soak-rate was not given")
        return
    seconds, width = run.args.soak_seconds, run.args.soak_window
    await run.keyed_worker()
    settings = run.settings()
    names = TopicNames(settings.topic_prefix)
    now = datetime.now(UTC)
    count = int(rate * seconds)
    events = soak_events(count, run.args.seed + 70, f"b{run.run_id}-soak-", now)
    say(f"  soak: {count:,} events at {rate:,.0f}/s for {seconds:,.0f} s")

    watch = await watch_from_end(names.transitions)
    sent_at: dict[str, float] = {}
    latencies: list[tuple[float, float]] = []  # (send time from the start, latency)
    seen: set[str] = set()
    started = time.perf_counter()

    async def receive() -> None:
        while True:
            batch = await watch.getmany(timeout_ms=100)
            arrived = time.perf_counter()
            for records in batch.values():
                for record in records:
                    t = json.loads(record.value)
                    sent = sent_at.get(t.get("triggering_event_id"))
                    if sent is not None and t["transition_id"] not in seen:
                        seen.add(t["transition_id"])
                        latencies.append((sent - started, arrived - sent))

    sampler = Sampler(run, settings, started)
    tasks = [asyncio.create_task(receive()), asyncio.create_task(sampler.loop())]
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=2)
    await producer.start()
    sent = 0
    try:
        for n, event in enumerate(tqdm(events, total=count, desc="soak", unit="ev")):
            if (wait := started + n / rate - time.perf_counter()) > 0.0005:
                await asyncio.sleep(wait)
            sent_at[event["event_id"]] = time.perf_counter()
            await producer.send(
                names.name("page_views"), key=subject_key(event), value=json.dumps(event).encode()
            )
            sent = n + 1
        await producer.flush()
        last_send = time.perf_counter()
        drain = await run.kafka.wait_caught_up(sampler.groups, 1800, desc="soak drain")
        await asyncio.sleep(1.0)  # the last transitions on their way
        await sampler.sample()
    finally:
        for task in tasks:
            task.cancel()
        await producer.stop()
        await watch.stop()
    lag = sampler.lag
    figure: dict[str, Any] = {
        "offered_per_second": rate,
        "of_worker_events_per_second": measured,
        "seconds": seconds,
        "events": sent,
        "achieved_offer": round(sent / (last_send - started)),
        "transitions": len(latencies),
        "drain_after_last_send_s": round(drain, 1),
        "record_cache_size": settings.record_cache_size,
        "samples": len(lag),
        "lag_p99": percentile([float(x) for x in lag], 0.99) if lag else None,
        "lag_max": max(lag) if lag else None,
        **memory(sampler.worker, width, "worker"),
        **memory(sampler.projector, width, "projector"),
        **{f"overall_{k}": v for k, v in latency_figures([x for _, x in latencies]).items()},
        "windows": windows(latencies, width, seconds),
        "rss_samples_mib": [m for _, m in sampler.worker],
    }
    run.figures["soak"] = figure
