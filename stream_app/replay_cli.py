"""``simulate`` and ``rules check``: score past events offline with a rules file.

This is how marketing ops test a rules change before it goes live, and the
oracle the live pipeline is compared with: the same events through the same
rules give the same transitions, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from schemas.dead_letter import DeadLetter
from schemas.transitions import SlaBreach
from stream_app.codec import decode
from stream_app.errors import InputError
from stream_app.rules_file import Rules, load_rules
from stream_app.scoring.engine import ts
from stream_app.scoring.funnel import funnel
from stream_app.scoring.replay import Replay
from stream_app.segment import Ignored
from stream_app.tracks import SHIPPED_TRACKS, Tracks, load_tracks

SIMULATE_EPILOG = """\
input: one event per line, the same JSON as on the input topics, e.g.
  {"type": "page_view", "event_id": "e1", "occurred_at": "2026-11-02T10:00:00Z",
   "anonymous_id": "c-42", "path": "/pricing"}
or Segment-spec messages as RudderStack or Segment write them, e.g.
  {"type": "track", "event": "Email Link Clicked", "messageId": "m1", "userId": "u1",
   "timestamp": "2026-11-02T10:00:00Z", "properties": {"link_url": "https://..."}}
A track whose name --tracks does not map is counted as ignored, not as bad.
An erase line ({"type": "erase", ..., "lead_id": "u1"}) forgets that person
from there on, as the worker does (counted as erasures in the summary).
Events should be in the order they happened per lead (as Kafka would deliver
them). Bad lines are reported with their line number and skipped; they never
stop the run. Blank lines are ignored.

output: one stage_transition per line (--out, or stdout), in processing order;
with --breaches FILE, the SLA breaches (the lead_sla_breaches topic's JSON) go
there, one per line; the funnel summary, the count of bad lines and the ignored
names go to stderr.

examples:
  python -m stream_app simulate --rules rules/default.yaml events.jsonl
  python -m stream_app simulate --rules rules/new.yaml events.jsonl --out new.jsonl \\
      --sweep-at 2026-12-01T00:00:00Z      # also demote leads gone cold by then
  python -m stream_app simulate --rules rules/default.yaml events.jsonl --out t.jsonl \
      --breaches sla.jsonl --sweep-at 2026-12-01T00:00:00Z   # and SLA breaches by then
  python -m stream_app simulate --rules rules/default.yaml - < events.jsonl

exit status: 0 on success (even with bad lines), 2 on a bad rules file or
unreadable input.
"""


def _lines(source: str) -> Iterator[tuple[int, bytes]]:
    if source == "-":
        stream: IO[bytes] = sys.stdin.buffer
        yield from enumerate(stream, start=1)
        return
    try:
        with open(source, "rb") as handle:
            yield from enumerate(handle, start=1)
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from None


def _progress(source: str, quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm import tqdm  # noqa: PLC0415

    total = Path(source).stat().st_size if source != "-" else None
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="simulate",
        file=sys.stderr,
        mininterval=0.5,
        disable=None,
    )


def _parse_when(text: str) -> float:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone, e.g. {text}Z or {text}+00:00")
    return ts(value)


def run_simulation(
    rules: Rules,
    source: str,
    out: IO[str],
    *,
    sweep_at: float | None = None,
    quiet: bool = False,
    max_bad_lines_shown: int = 20,
    tracks: Tracks | None = None,
    switches: Sequence[tuple[int, Rules]] = (),
    breaches_out: IO[str] | None = None,
) -> dict[str, Any]:
    """Replay ``source`` through ``rules``; write transitions to ``out``; return a summary.

    ``switches``: (line number, rules) pairs: from that input line on, those rules
    score, as a worker that reloads its rules (SIGHUP) between two events does.
    SLA breaches go to ``breaches_out`` if given (they are counted either way)."""
    replay = Replay(rules)
    pending = sorted(switches, key=lambda switch: switch[0])
    statuses: Counter[str] = Counter()
    bad: list[DeadLetter] = []
    ignored: Counter[str] = Counter()
    transitions = events = breaches = 0
    started = time.perf_counter()
    bar = _progress(source, quiet)
    for number, raw in _lines(source):
        while pending and number >= pending[0][0]:
            replay.rules = pending.pop(0)[1]
        if bar is not None:
            bar.update(len(raw))
        line = raw.strip()
        if not line:
            continue
        decoded = decode(line, line=number, tracks=tracks)
        if isinstance(decoded, Ignored):
            ignored[decoded.label] += 1
            continue
        if isinstance(decoded, DeadLetter):
            bad.append(decoded)
            if len(bad) <= max_bad_lines_shown:
                print(f"line {number}: {decoded.reason}: {decoded.error}", file=sys.stderr)
            continue
        events += 1
        step = replay.process(decoded, with_update=False)
        statuses[step.status] += 1
        for breach in step.breaches:
            if breaches_out is not None:
                breaches_out.write(breach.model_dump_json() + "\n")
            breaches += 1
        for transition in step.transitions:
            out.write(transition.model_dump_json() + "\n")
            transitions += 1
    if bar is not None:
        bar.close()
    if sweep_at is not None:
        for item in replay.sweep_all(sweep_at):
            if isinstance(item, SlaBreach):
                if breaches_out is not None:
                    breaches_out.write(item.model_dump_json() + "\n")
                breaches += 1
            else:
                out.write(item.model_dump_json() + "\n")
                transitions += 1
    elapsed = time.perf_counter() - started
    if len(bad) > max_bad_lines_shown:
        print(f"... and {len(bad) - max_bad_lines_shown} more bad lines", file=sys.stderr)
    return {
        "events": events,
        "bad_lines": len(bad),
        "ignored": ignored,
        "duplicates": statuses["duplicate"],
        "late": statuses["late"],
        "transitions": transitions,
        "sla_breaches": breaches,
        "erasures": statuses["erased"],
        "seconds": elapsed,
        "events_per_second": events / elapsed if elapsed > 0 else None,
        "funnel": funnel(replay.leads(), replay.rules),
        "rules_version": replay.rules.stamp,
    }


def _parse_switch(text: str) -> tuple[int, Path]:
    line, sep, path = text.partition(":")
    if not sep or not line.isdigit() or int(line) < 1 or not path:
        raise argparse.ArgumentTypeError(
            f"expected LINE:PATH, e.g. 5000:rules/q3.yaml, not {text!r}"
        )
    return int(line), Path(path)


def _cmd_simulate(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules)
    switches = [(line, load_rules(path)) for line, path in args.switch_rules]
    for line, switched in switches:
        print(f"from line {line}: rules {switched.stamp} from {switched.source}", file=sys.stderr)
    tracks = load_tracks(args.tracks)
    print(
        f"rules {rules.stamp} from {rules.source}; track names {tracks.version} from {args.tracks}",
        file=sys.stderr,
    )
    with ExitStack() as stack:
        out: IO[str] = (
            stack.enter_context(open(args.out, "w", encoding="utf-8")) if args.out else sys.stdout
        )
        breaches_out: IO[str] | None = (
            stack.enter_context(open(args.breaches, "w", encoding="utf-8"))
            if args.breaches
            else None
        )
        summary = run_simulation(
            rules,
            args.events,
            out,
            sweep_at=args.sweep_at,
            quiet=args.quiet,
            tracks=tracks,
            switches=switches,
            breaches_out=breaches_out,
        )
    rate = summary["events_per_second"]
    print(
        f"{summary['events']} events ({summary['bad_lines']} bad lines, "
        f"{summary['duplicates']} duplicates, {summary['late']} too late) -> "
        f"{summary['transitions']} transitions, {summary['sla_breaches']} SLA breaches, "
        f"{summary['erasures']} erasures in {summary['seconds']:.1f}s"
        + (f" ({rate:,.0f} events/s)" if rate else ""),
        file=sys.stderr,
    )
    ignored: Counter[str] = summary["ignored"]
    if ignored:
        names = ", ".join(f"{name} x{n}" for name, n in ignored.most_common(10))
        more = f" and {len(ignored) - 10} more names" if len(ignored) > 10 else ""
        print(
            f"{ignored.total()} ignored (valid, but no rule uses them): {names}{more}",
            file=sys.stderr,
        )
    for line in summary["funnel"].lines():
        print(line, file=sys.stderr)
    return 0


def _cmd_rules_check(args: argparse.Namespace) -> int:
    rules = load_rules(args.path)
    spec = rules.spec
    summary = {
        "file": str(args.path),
        "version": rules.stamp,
        "engagement_rules": len(spec.engagement.rules),
        "signals": len(spec.signals),
        "fit_rules": len(spec.fit.rules),
        "disqualifiers": len(spec.disqualify),
        "half_life_days": spec.engagement.half_life_days,
        "mql": spec.stages.mql.model_dump(),
        "sql": spec.stages.sql.model_dump(),
        "recycle_below": spec.stages.recycle.below_total,
    }
    print(json.dumps(summary, indent=2))
    return 0


def add_commands(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    simulate = sub.add_parser(
        "simulate",
        help="offline replay: score a JSON-lines event file, write transitions",
        description="Score past events with a rules file, exactly as the live worker would.",
        epilog=SIMULATE_EPILOG,
        formatter_class=formatter,
    )
    simulate.add_argument("events", help="JSON-lines file of events, or - for stdin")
    simulate.add_argument("--rules", required=True, type=Path, help="rules file (YAML)")
    simulate.add_argument("--out", type=Path, help="write transitions here instead of stdout")
    simulate.add_argument(
        "--breaches", type=Path, metavar="FILE", help="write SLA breaches here (JSON lines)"
    )
    simulate.add_argument(
        "--sweep-at",
        type=_parse_when,
        metavar="TIME",
        help="after the events, run the decay and SLA sweep at this ISO-8601 event time",
    )
    simulate.add_argument(
        "--tracks",
        type=Path,
        default=SHIPPED_TRACKS,
        help="track-name mapping for Segment-spec lines (YAML; LEADSTREAM_TRACKS_PATH live)",
    )
    simulate.add_argument(
        "--switch-rules",
        type=_parse_switch,
        action="append",
        default=[],
        metavar="LINE:PATH",
        help=(
            "from input line LINE on, score with the rules at PATH (repeatable): what a "
            "worker does that reloads its rules on SIGHUP between those two events"
        ),
    )
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(handler=_cmd_simulate)

    rules = sub.add_parser(
        "rules",
        help="check a rules file",
        description="Validate a rules file; errors name the file and the path of the bad key.",
        epilog="example:\n  python -m stream_app rules check rules/default.yaml",
        formatter_class=formatter,
    )
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rules_sub.add_parser("check", help="validate and summarise a rules file")
    check.add_argument("path", type=Path)
    check.set_defaults(handler=_cmd_rules_check)
