"""``python -m tools generate``: the traffic generator's command (``tools.traffic``), with the
ground truth's sales feedback on demand (``tools.outcomes``, which replays the traffic)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from tools import traffic
from tools.outcomes import with_outcomes
from tools.traffic import START, generate, write


def _cmd_generate(args: argparse.Namespace) -> int:
    start = datetime.fromisoformat(args.start) if args.start else START
    if args.outcomes:
        events = with_outcomes(
            args.leads, args.seed, mode=args.outcomes, start=start, id_prefix=args.prefix
        )
    else:
        events = generate(args.leads, args.seed, start=start, id_prefix=args.prefix)
    count = write(events, sys.stdout, args.limit)
    with_what = f", sales feedback drawn from the {args.outcomes} model" if args.outcomes else ""
    print(
        f"generated {count} events for {args.leads} prospects (seed {args.seed}{with_what})",
        file=sys.stderr,
    )
    return 0


def add_command(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    gen = sub.add_parser(
        "generate",
        help="write seeded, realistic prospect traffic as JSON lines to stdout",
        description=traffic.__doc__,
        formatter_class=formatter,
    )
    gen.add_argument("--leads", type=int, default=1000, help="number of prospects")
    gen.add_argument("--seed", type=int, default=7, help="random seed (same seed, same events)")
    gen.add_argument("--limit", type=int, help="stop after this many events")
    gen.add_argument("--start", help="ISO-8601 time of the earliest activity (with time zone)")
    gen.add_argument("--prefix", default="", help="prefix for every id (keeps runs apart)")
    gen.add_argument(
        "--outcomes",
        choices=["truth", "random"],
        help=(
            "also write sales feedback (accepted, opportunity, won, lost, rejected) for every "
            "lead that reached sales, drawn from a hidden propensity (truth: some behaviours "
            "and fit predict it, tools/outcomes.py) or at random (nothing to learn); the "
            "traffic itself stays the same"
        ),
    )
    gen.set_defaults(handler=_cmd_generate)
