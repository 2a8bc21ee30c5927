"""A burst: ``--burst-seconds`` at ``--burst-rate`` events/s offered to the running keyed
worker. Reported: the drain time (first send -> the worker's groups committed everything
and every transition the pure core expects was received, or 30 s more), the latencies
during it, and the transitions the pure core finds on the same events (in event-time
order) against those received, by count and by id. The burst goes to one input topic,
keyed by subject (what RudderStack writes), so each subject's events reach the worker in
their order and the core's transitions are what the worker must publish; the one
exception is a claim that overtakes a visitor's earlier events still waiting in the
backlog of its partition (docs/guarantees.md), which changes a transition without
losing anything."""

from __future__ import annotations

from bench.context import Run
from bench.phases.latency import fresh_events, offer
from bench.topology import watched
from schemas.events import parse_event
from stream_app.scoring.replay import Replay


def expected_ids(events: list[dict[str, object]], run: Run) -> set[str]:
    core = Replay(run.rules)
    return {t.transition_id for e in events for t in core.process(parse_event(e)).transitions}


async def run(run: Run) -> None:
    rate, seconds = run.args.burst_rate, run.args.burst_seconds
    events = fresh_events(rate, seconds, run.args.seed + 50, f"b{run.run_id}-burst-")
    expected = expected_ids(events, run)
    await run.keyed_worker()
    figure = await offer(
        run.kafka,
        run.prefix(),
        watched(run.settings()),
        events,
        rate,
        limit_s=7200,
        expected=expected,
        desc="burst",
        one_topic=True,
    )
    received: set[str] = figure.pop("_received")
    figure |= {
        "burst": True,
        "seconds": seconds,
        "transitions_expected": len(expected),
        "transitions_received": len(received & expected),
        "transitions_missing": len(expected - received),
        "transitions_unexpected": len(received - expected),
    }
    run.figures["burst"] = figure
