"""Benchmark harness: the live worker beside bare Faust agents and its ceilings, on the real
local stack (Kafka and Redis of `make stack-up`).

    python -m bench.harness --quick                  # make bench-quick (4 min at 8227b15)
    python -m bench.harness                          # make bench (sizes below)
    python -m bench.harness --quick --phases worker  # one phase (profiling, experiments)

Every figure is measured in the same run as its baselines, on the same seeded events
(skewed activity, the real mix of event types, identify merges, one bad message in a
thousand), preloaded once on topics of their own; compare figures only as ratios
within one run (this machine's speed swings by about 45 %). The phases, in order:

  pure_core       decode + identity + scoring in one process (Replay), no Kafka; always
                  runs: its transitions are what the worker phases and the burst expect
  passthrough     raw aiokafka consume -> JSON decode -> produce over the preload
  ceiling         the worker's own driver (PartitionBatch) on aiokafka batches, no
                  Faust (bench/batched.py), over --batched-events of the preload
  faust_count     a bare Faust agent that only counts, with the worker's Faust settings
  faust_floor     the worker's minimal shape as a bare Faust agent: per message one RocksDB
                  table write (with changelog) and one topic.send (bench/faust_agents.py)
  worker          `python -m stream_app worker` on the subject-keyed preload (key: lead
                  id, else anonymous id), from its start-up line until its groups (scoring
                  and Redis projection) committed every offset; transitions vs the core's
  worker_unkeyed  the same on the first --unkeyed-events messages without keys (fresh
                  topics and app): the producer spreads them over the partitions
  latency         fresh prospects at each of --rates events/s for --latency-seconds each:
                  producer send -> transition received, p50/p95/p99/max
  burst           --burst-seconds at --burst-rate events/s: drain time, p99, and the
                  transitions lost against the pure core's on the same events
  soak            --soak-seconds at --soak-fraction of the keyed worker's measured events/s
                  (or --soak-rate): RSS of the worker and its projector (start, end, slope),
                  consumer lag p99/max, latency p50/p99/max per --soak-window of send time
  recovery        kill -9 and restart (same data); then an empty data directory
  scale_out       two workers together on --scale-events freshly preloaded events
  state           a changelog seeded with --state-leads lead records: restore from an
                  empty data directory, RSS, RocksDB bytes per lead, kill -9 and restart
  dashboard       the dashboard's pages over --dashboard-leads leads in Redis: median and
                  max render ms per page, HTML weight (bench/dashboard.py; no worker)

The Faust agents and the worker each run alone, as processes of their own, timed the
same way (start-up line -> group committed everything; also "steady": from the first
commit to the last). Sizes, quick / full:

  --events          20,000 over 2,000 prospects / 200,000 over 20,000
  --unkeyed-events  20,000 / 100,000
  --batched-events  all / 100,000        --scale-events  10,000 / 100,000
  --rates           250,1000 at 6 s each / 250,500,1000,2000 at 15 s each
  --burst-*         10 s at 5,000/s / 60 s at 10,000/s
  --soak-*          60 s in 20 s windows / 30 min in 5 min windows, at half the worker's rate
  --state-leads     20,000 / 1,000,000     --dashboard-leads  10,000 / 100,000

Results go to bench/results/<UTC time>-<mode>.json and .md: a top-level `summary`
(events/s of each phase, the target ratios, p99 per offered rate, bench_minutes; null
for a phase that did not run), then every phase's figures, the command, git commit,
machine and versions. --profile FILE runs the keyed worker under py-spy (pip install
py-spy); --until PHASE stops after PHASE; --phases runs a subset (with the preload it
needs; a later phase starts the worker when the worker phase did not run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path

from bench.common import (
    RESULTS,
    Kafka,
    Result,
    drop_topics,
    forget_redis,
    git_commit,
    machine,
    preload,
    say,
    traffic,
    utc_stamp,
    versions,
)
from bench.context import Run
from bench.phases import (
    burst,
    ceiling,
    dashboard,
    faust_baselines,
    latency,
    passthrough,
    pure_core,
    recovery,
    scale_out,
    soak,
    state_at_scale,
    worker,
)
from bench.report import build_summary, fallback, render
from bench.topology import all_topics
from stream_app.config import REPO_ROOT, Settings
from stream_app.rules_file import load_rules
from tools.devstack import kafka_answers

Phase = Callable[[Run], Awaitable[None]]
PHASES: dict[str, Phase] = {
    "pure_core": pure_core.run,
    "passthrough": passthrough.run,
    "ceiling": ceiling.run,
    "faust_count": faust_baselines.count,
    "faust_floor": faust_baselines.floor,
    "worker": worker.keyed,
    "worker_unkeyed": worker.unkeyed,
    "latency": latency.run,
    "burst": burst.run,
    "soak": soak.run,
    "recovery": recovery.run,
    "scale_out": scale_out.run,
    "state": state_at_scale.run,
    "dashboard": dashboard.run,
}
ON_PRELOAD = {
    "passthrough",
    "ceiling",
    "faust_count",
    "faust_floor",
    "worker",
    "worker_unkeyed",
    "latency",
    "burst",
    "soak",
    "recovery",
}
LEGACY_UNTIL = {"3": "worker", "7": "state"}  # --until 3: the old "after the throughput"
FIGURE = {"ceiling": "batched", "state": "state"}  # phase -> its key in the figures

NOTES = [
    "worker, faust_count, faust_floor: from the process's start-up line (it then joins the "
    "group and restores its tables) until its consumer groups have committed every offset "
    "they read (polled every 0.5 s; Faust commits every ~2.8 s): for the worker the scoring "
    "group its inputs and internal topics (stream_app.worker.app.worker_topics), and the Redis "
    "projection's group the score updates and transitions; steady: inputs committed from "
    "the first commit to the last, without start-up",
    "latency: fresh prospects' events produced at the offered rate; each transition's "
    "latency is from the producer's send of its triggering event to a consumer of the "
    "transitions topic receiving it; burst: the same, drain from the first send until the "
    "groups committed everything and every transition the pure core expects was received",
    "recovery: spawn of the new worker process -> its score update for a probe event sent "
    "right after the spawn (static membership: LEADSTREAM_INSTANCE_ID is set)",
    "transitions vs the pure core: the core replays the events in event-time order; the "
    "worker reads its nine input topics in its own interleaving, and a lead's transitions "
    "(and their deterministic ids) depend on the order of its events, so counts and ids "
    "differ without any loss (a check on 2,835 messages of this traffic: replayed topic by "
    "topic they give 96 transitions instead of 122, 63 ids in common). Equality holds only "
    "when each lead's events arrive in order (one topic, keyed by lead)",
    "scale-out: two workers started together on freshly preloaded topics, same partitions",
    "design ceiling: bench/batched.py runs the worker's own driver (PartitionBatch) on "
    "aiokafka getmany batches, with the same repartition hop and the same order per batch "
    "(acks, then records to RocksDB and a changelog topic, then updates), offsets committed "
    "after each batch; without Faust, rebalances, restore, decay sweep and Redis "
    "projection. Not the product: what the same work costs without Faust's path",
    "burst: its events go to one input topic keyed by subject, so the pure core's "
    "transitions are what the worker must publish; decay demotions found on the way have "
    "no triggering event and count as received without a latency",
]


def rates(value: str) -> list[int]:
    return [int(x) for x in value.split(",")]


def phase_list(value: str) -> list[str]:
    names = [x.strip() for x in value.split(",") if x.strip()]
    unknown = [n for n in names if n not in PHASES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phase(s) {unknown}; known: {list(PHASES)}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.harness",
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    add = p.add_argument
    add("--quick", action="store_true", help="the small sizes (make bench-quick)")
    add("--events", type=int, help="keyed messages preloaded (20,000 quick; 200,000 full)")
    add("--prospects", type=int, help="simulated prospects (2,000 quick; 20,000 full)")
    add("--unkeyed-events", type=int, help="of those, sent again without keys (20,000; 100,000)")
    add("--seed", type=int, default=11)
    add("--rates", type=rates, help="offered loads for latency, events/s, comma-separated")
    add("--latency-seconds", type=float, help="seconds per offered load (6 quick, 15 full)")
    add("--burst-rate", type=int, help="burst events/s offered (5,000 quick, 10,000 full)")
    add("--burst-seconds", type=float, help="burst length (10 s quick, 60 s full)")
    add("--soak-seconds", type=float, help="soak length (60 s quick, 1,800 s full)")
    add("--soak-window", type=float, help="soak latency window (20 s quick, 300 s full)")
    add(
        "--soak-fraction",
        type=float,
        default=0.5,
        help="soak load as a fraction of the keyed worker's measured events/s (0.5)",
    )
    add("--soak-rate", type=float, help="soak load in events/s, instead of --soak-fraction")
    add("--scale-events", type=int, help="events for two workers (10,000 quick, 100,000 full)")
    add("--batched-events", type=int, help="inputs for the design ceiling (all quick, 100,000)")
    add("--state-leads", type=int, help="seeded leads (20,000 quick, 1,000,000 full)")
    add("--dashboard-leads", type=int, help="leads in Redis for the dashboard (10,000; 100,000)")
    add("--dashboard-rounds", type=int, default=5, help="requests per dashboard page (5)")
    add("--faust-runs", type=int, default=1, help="runs of each bare Faust agent (spread)")
    add(
        "--phases",
        type=phase_list,
        default=list(PHASES),
        metavar="A,B",
        help="run only these phases (comma-separated names from the list below)",
    )
    add("--until", metavar="PHASE", help="stop after PHASE (3: after the keyed worker, as before)")
    add(
        "--profile",
        type=Path,
        metavar="FILE",
        help="run the keyed worker under py-spy; write its collapsed stacks to FILE",
    )
    return p


def defaults(args: argparse.Namespace) -> argparse.Namespace:
    quick = args.quick
    for name, small, full in [
        ("events", 20_000, 200_000),
        ("prospects", 2_000, 20_000),
        ("unkeyed_events", 20_000, 100_000),
        ("rates", [250, 1000], [250, 500, 1000, 2000]),
        ("latency_seconds", 6.0, 15.0),
        ("burst_rate", 5_000, 10_000),
        ("burst_seconds", 10.0, 60.0),
        ("soak_seconds", 60.0, 1800.0),
        ("soak_window", 20.0, 300.0),
        ("scale_events", 10_000, 100_000),
        ("batched_events", None, 100_000),
        ("state_leads", 20_000, 1_000_000),
        ("dashboard_leads", 10_000, 100_000),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    args.batched_events = args.batched_events or args.events
    until = LEGACY_UNTIL.get(args.until or "", args.until)
    if until is not None:
        if until not in PHASES:
            raise SystemExit(f"--until: unknown phase {args.until!r}; known: {list(PHASES)}")
        last = list(PHASES).index(until)
        args.phases = [p for p in args.phases if list(PHASES).index(p) <= last]
    args.phases = ["pure_core", *[p for p in PHASES if p in args.phases and p != "pure_core"]]
    return args


def new_result(args: argparse.Namespace) -> Result:
    mode = "quick" if args.quick else "full"
    if args.phases != list(PHASES):
        mode += "-partial"
    return Result(
        mode=mode,
        command=" ".join(["python -m bench.harness", *sys.argv[1:]]),
        started_at=utc_stamp(),
        commit=git_commit(),
        machine=machine(),
        versions=versions(),
        events=args.events,
        prospects=args.prospects,
        bad_messages=0,
        partitions=Settings().topic_partitions,
    )


async def run(args: argparse.Namespace, result: Result) -> None:
    """The phases, filling ``result`` as they go (an abort keeps what was measured)."""
    run_id = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    failed = True
    async with Kafka() as kafka:
        ctx = Run(
            args, result, load_rules(REPO_ROOT / "rules" / "default.yaml"), run_id, work, kafka
        )
        try:
            say(f"run {run_id}: generating {args.events:,} messages")
            ctx.messages = traffic(args.events, args.prospects, args.seed, f"b{run_id}-")
            result.events = len(ctx.messages)
            result.bad_messages = sum(1 for _, k, _ in ctx.messages if k == b"bad")
            for n, name in enumerate(args.phases, 1):
                if name in ON_PRELOAD:
                    await preload_once(ctx)
                say(f"{n}/{len(args.phases)} {name}")
                started = time.perf_counter()
                await PHASES[name](ctx)
                figure = ctx.figures.get(FIGURE.get(name, name))
                say(
                    f"  {name}: {time.perf_counter() - started:.0f} s; "
                    f"{json.dumps(figure, default=str)[:400] if figure else ''}"
                )
            failed = False
        finally:
            ctx.stop_workers()
            await drop_topics((f"bench{run_id}", f"bench-{run_id}"))
            forget_redis(f"ls:bench:{run_id}")
            shutil.rmtree(work, ignore_errors=True)
            for log in dict.fromkeys(ctx.logs):
                if failed and log.exists():
                    say(f"log kept: {log}")
                else:
                    log.unlink(missing_ok=True)
    result.notes += NOTES


async def preload_once(ctx: Run) -> None:
    if "preload" in ctx.figures:
        return
    settings = ctx.settings()
    from stream_app.kafka import ensure_topics  # noqa: PLC0415

    await ensure_topics(settings, [*all_topics(settings), f"{settings.topic_prefix}passthrough"])
    ctx.figures["preload"] = {"seconds": round(await preload(ctx.messages, ctx.prefix()), 2)}


def main(argv: list[str] | None = None) -> int:
    args = defaults(parser().parse_args(argv))
    if not kafka_answers(9092):
        raise SystemExit("Kafka does not answer on 127.0.0.1:9092: run `make stack-up` first")
    result = new_result(args)
    started = time.perf_counter()
    status = 0
    try:
        asyncio.run(run(args, result))
    except (Exception, KeyboardInterrupt) as exc:  # keep what was measured before the abort
        traceback.print_exc()
        result.notes.append(f"ABORTED: {type(exc).__name__}: {exc}")
        result.mode += "-aborted"
        status = 1
    result.summary = build_summary(result.figures, (time.perf_counter() - started) / 60)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{result.started_at.replace(':', '')}-{result.mode}"
    stem.with_suffix(".json").write_text(json.dumps(asdict(result), indent=2, default=str) + "\n")
    try:
        text = render(result)
    except (KeyError, TypeError, ValueError):  # an unexpected shape: the figures as measured
        text = fallback(result)
    stem.with_suffix(".md").write_text(text)
    print(text)
    say(f"wrote {stem}.json and .md")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
