"""The pure core: decode + identity + scoring in one process (``Replay``), no Kafka.

It is also the oracle: the transition ids it finds are what the worker phases
and the burst compare their transitions with.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from bench.common import Message
from bench.context import Run
from schemas.events import parse_event
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules


def replay(messages: list[Message], rules: Rules) -> tuple[dict[str, Any], Replay, set[str]]:
    """Figures, the final Replay and the transition ids of ``messages`` through the core."""
    core = Replay(rules)
    expected: list[str] = []
    started = time.perf_counter()
    bad = 0
    for _, _, value in messages:
        try:  # the schema's own parser: the worker's codec is being rewritten
            decoded = parse_event(value)
        except ValidationError:
            bad += 1
            continue
        step = core.process(decoded)
        expected += (t.transition_id for t in step.transitions)
    seconds = time.perf_counter() - started
    leads = sum(1 for _ in core.leads())
    figures = {
        "seconds": round(seconds, 2),
        "events_per_second": round(len(messages) / seconds),
        "leads": leads,
        "keys": len(core.states),
        "dead_letters": bad,
        "transitions": len(expected),
    }
    return figures, core, set(expected)


async def run(run: Run) -> None:
    run.figures["pure_core"], run.replay, run.expected = replay(run.messages, run.rules)
