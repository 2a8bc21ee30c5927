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

from schemas.base import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from schemas.dead_letter import DeadLetter
from schemas.transitions import SlaBreach, StageTransition
from stream_app.codec import decode
from stream_app.errors import InputError
from stream_app.ingest.segment import Ignored
from stream_app.ingest.tracks import SHIPPED_TRACKS, Tracks, load_tracks
from stream_app.rules_file import Rules, load_rules
from stream_app.scoring.engine import dt, ts
from stream_app.scoring.funnel import funnel
from stream_app.scoring.replay import Replay

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

arrival: the worker dead-letters (future_event) an event dated more than
LEADSTREAM_MAX_CLOCK_SKEW_SECONDS after its message reached it: the earlier
of its Kafka timestamp and its own received_at / receivedAt. A file has no
Kafka timestamps: here a line's own received_at (native) or receivedAt
(Segment) is its arrival (past --max-clock-skew: a bad line, future_event),
and a line without one has no bound (a file is trusted to be history).

output: one stage_transition per line (--out, or stdout), in processing order;
with --breaches FILE, the SLA breaches (the lead_sla_breaches topic's JSON) go
there, one per line; the funnel summary, the count of bad lines and the ignored
names go to stderr.

examples:
  python -m stream_app simulate --rules rules/default.yaml events.jsonl
  python -m stream_app simulate --rules rules/new.yaml events.jsonl --out new.jsonl \\
      --sweep-at 2026-12-01T00:00:00Z      # also demote leads gone cold by then
  python -m stream_app simulate --rules rules/default.yaml events.jsonl --out t.jsonl \\
      --breaches sla.jsonl --sweep-at 2026-12-01T00:00:00Z   # and SLA breaches by then
  python -m stream_app simulate --rules rules/default.yaml - < events.jsonl
  python -m stream_app simulate --rules rules/default.yaml events.jsonl \\
      --switch-rules 5000:rules/q3.yaml@2026-12-01T09:00:00Z
      # from line 5000 on, rules/q3.yaml; every lead re-evaluated against its
      # lines at that time (a reload's), as the worker does on SIGHUP

exit status: 0 on success (even with bad lines), 2 on a bad rules file or
unreadable input.
"""


#: (input line, the rules scoring from it on, the switch's event time or None)
Switch = tuple[int, Rules, float | None]


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
    switches: Sequence[Switch] = (),
    breaches_out: IO[str] | None = None,
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
) -> dict[str, Any]:
    """Replay ``source`` through ``rules``; write transitions to ``out``; return a summary.

    ``switches``: (line number, rules, time) triples: from that input line on, those
    rules score, as a worker that reloads its rules (SIGHUP) between two events does,
    and every lead is re-evaluated against them at the switch's event time (the
    reload's clock time; None: the newest event time read before that line).
    SLA breaches go to ``breaches_out`` if given (they are counted either way)."""
    replay = Replay(rules)
    pending = sorted(switches, key=lambda switch: switch[0])
    newest: float | None = None  # the newest event time read so far
    statuses: Counter[str] = Counter()
    bad: list[DeadLetter] = []
    ignored: Counter[str] = Counter()
    transitions = events = breaches = 0
    started = time.perf_counter()
    bar = _progress(source, quiet)

    def write(items: Sequence[StageTransition | SlaBreach]) -> None:
        nonlocal transitions, breaches
        for item in items:
            if isinstance(item, SlaBreach):
                if breaches_out is not None:
                    breaches_out.write(item.model_dump_json() + "\n")
                breaches += 1
            else:
                out.write(item.model_dump_json() + "\n")
                transitions += 1

    def switch(upto: float) -> None:
        while pending and upto >= pending[0][0]:
            _, switched, switch_at = pending.pop(0)
            at = switch_at if switch_at is not None else newest
            if at is None:  # nothing read yet: no lead to re-evaluate
                replay.rules = switched
            else:
                write(replay.switch_rules(switched, at))

    for number, raw in _lines(source):
        switch(number)
        if bar is not None:
            bar.update(len(raw))
        line = raw.strip()
        if not line:
            continue
        # A file carries no Kafka timestamps: a line's arrival is its own received_at /
        # receivedAt, or unknown, and then its time is not bounded (codec.ahead_of_arrival).
        decoded = decode(line, line=number, tracks=tracks, max_clock_skew=max_clock_skew)
        if isinstance(decoded, Ignored):
            ignored[decoded.label] += 1
            continue
        if isinstance(decoded, DeadLetter):
            bad.append(decoded)
            if len(bad) <= max_bad_lines_shown:
                print(f"line {number}: {decoded.reason}: {decoded.error}", file=sys.stderr)
            continue
        events += 1
        t = ts(decoded.occurred_at)
        newest = t if newest is None or t > newest else newest
        step = replay.process(decoded, with_update=False)
        statuses[step.status] += 1
        write(step.breaches)
        write(step.transitions)
    if bar is not None:
        bar.close()
    switch(float("inf"))  # a switch after the last line: after every event
    if sweep_at is not None:
        write(list(replay.sweep_all(sweep_at)))
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


def _parse_switch(text: str) -> tuple[int, Path, float | None]:
    line, sep, path = text.partition(":")
    if not sep or not line.isdigit() or int(line) < 1 or not path:
        raise argparse.ArgumentTypeError(
            f"expected LINE:PATH[@TIME], e.g. 5000:rules/q3.yaml, not {text!r}"
        )
    at = None
    head, sep, when = path.rpartition("@")
    if sep and head and when[:1].isdigit():
        at = _parse_when(when)
        path = head
    return int(line), Path(path), at


def _cmd_simulate(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules)
    switches = [(line, load_rules(path), at) for line, path, at in args.switch_rules]
    for line, switched, at in switches:
        when = "the newest event before it" if at is None else dt(at).isoformat()
        print(
            f"from line {line}: rules {switched.stamp} from {switched.source}, "
            f"every lead re-evaluated at {when}",
            file=sys.stderr,
        )
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
            max_clock_skew=args.max_clock_skew,
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
        "form_fields": {m.field: m.trait for m in spec.form_fields},
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
        metavar="LINE:PATH[@TIME]",
        help=(
            "from input line LINE on, score with the rules at PATH (repeatable): what a "
            "worker does that reloads its rules on SIGHUP between those two events; "
            "every lead is re-evaluated against the new lines at TIME (ISO-8601, the "
            "reload's time the worker logs; default: the newest event time before LINE)"
        ),
    )
    simulate.add_argument(
        "--max-clock-skew",
        type=float,
        default=DEFAULT_MAX_CLOCK_SKEW_SECONDS,
        metavar="SECONDS",
        help=(
            "how far a line's event time may pass its own received_at / receivedAt "
            "(LEADSTREAM_MAX_CLOCK_SKEW_SECONDS live; default %(default)g)"
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
