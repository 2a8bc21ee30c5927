"""``compare``: what changes between two runs of the same events (files or live topics)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.transitions import StageTransition
from stream_app.errors import InputError
from stream_app.outcomes.compare import compare_transitions
from stream_app.outcomes.evaluation import LADDER

EPILOG = """\
inputs: two runs over the same events, each either a file `simulate --out` wrote
(one stage_transition per line) or `kafka:TOPIC`, a live transitions topic read
from its start to its end now (a champion's and a challenger's lead_stage_transitions;
LEADSTREAM_KAFKA_* settings). A transition id counts once and no order matters,
so a live topic gives the figures its offline `simulate` gives.

figures, B against A: MQL and SQL volume and the MQL->SQL rate under each; the
leads that reach MQL (and SQL) under one and not the other, and the outcome
rate of the leads B adds and drops; of the leads that reach it under both, how
many reach it earlier or later under B (median shift in days). Outcomes are
the sales_feedback transitions the runs carry (simulate events that include
the sales feedback).

examples:
  python -m stream_app simulate --rules rules/default.yaml events.jsonl --out a.jsonl
  python -m stream_app simulate --rules proposed.yaml events.jsonl --out b.jsonl
  python -m stream_app compare a.jsonl b.jsonl
  python -m stream_app compare kafka:lead_stage_transitions \\
      kafka:challenger.lead_stage_transitions --json changes.json

exit status: 0, or 2 on an unreadable input.
"""


def _from_file(path: str) -> Iterator[StageTransition]:
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield _parse(line, f"{path}:{number}")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def _parse(raw: bytes, where: str) -> StageTransition:
    try:
        return StageTransition.model_validate_json(raw)
    except ValidationError as exc:
        raise InputError(f"{where}: not a stage transition: {exc.errors()[0]['msg']}") from None


def transitions_of(spec: str, quiet: bool = True) -> list[StageTransition]:
    """A file's transitions, or a topic's (``kafka:TOPIC``) from its start to its end now."""
    if not spec.startswith("kafka:"):
        return list(_from_file(spec))
    from stream_app.commands.sources import read_topics  # noqa: PLC0415
    from stream_app.config import Settings  # noqa: PLC0415

    topic = spec.removeprefix("kafka:")
    values = asyncio.run(read_topics(Settings(), (topic,), quiet))
    return [_parse(v, f"{topic}") for v in values]


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _rate(row: dict[str, Any], outcome: str) -> str:
    return (
        f"{row['leads']:,} leads ({row['with_feedback']:,} with sales feedback), "
        f"{pct(row['rate'])} {outcome}"
    )


def compare_lines(found: dict[str, Any]) -> list[str]:
    a, b, outcome = found["a"], found["b"], found["outcome"]
    out = [
        f"MQLs: A {a['mql']:,}, B {b['mql']:,} ({b['mql'] - a['mql']:+,}); "
        f"SQLs: A {a['sql']:,}, B {b['sql']:,} ({b['sql'] - a['sql']:+,})",
        f"MQL->SQL: A {pct(a['mql_to_sql_rate'])}, B {pct(b['mql_to_sql_rate'])}; "
        f"MQLs {outcome}: A {pct(a['mql_positive']['rate'])}, B {pct(b['mql_positive']['rate'])}",
    ]
    for stage in ("mql", "sql"):
        row = found[stage]
        shift = row["median_shift_days"]
        out += [
            f"{stage.upper()} under both: {row['both']:,} ({row['earlier_under_b']:,} earlier "
            f"under B, {row['later_under_b']:,} later, {row['same_time']:,} at the same time"
            + (f"; median shift {shift:+.1f} days)" if shift is not None else ")"),
            f"  B adds {_rate(row['added_by_b'], outcome)}",
            f"  B drops {_rate(row['dropped_by_b'], outcome)}",
            f"  both keep {_rate(row['kept'], outcome)}",
        ]
    return out


def _cmd_compare(args: argparse.Namespace) -> int:
    a = transitions_of(args.a, args.quiet)
    b = transitions_of(args.b, args.quiet)
    found = compare_transitions(a, b, args.outcome)
    print(f"A: {args.a} ({len(a):,} transitions); B: {args.b} ({len(b):,} transitions)")
    for line in compare_lines(found):
        print(line)
    if args.json is not None:
        try:
            args.json.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{args.json}: cannot write: {exc.strerror}") from None
        print(f"JSON written to {args.json}", file=sys.stderr)
    return 0


def add_command(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    cmd = sub.add_parser(
        "compare",
        help="what changes between two simulate outputs or two live transition topics",
        description="Who reaches MQL and SQL under B and not A (and the other way), earlier "
        "or later, and how those leads turned out.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    cmd.add_argument("a", help="run A: a simulate output file, or kafka:TOPIC")
    cmd.add_argument("b", help="run B: a simulate output file, or kafka:TOPIC")
    cmd.add_argument("--outcome", choices=list(LADDER), default="won", help="the positive outcome")
    cmd.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar reading a topic")
    cmd.set_defaults(handler=_cmd_compare)
