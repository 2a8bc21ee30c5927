"""``evaluate``: is a rules file any good? Its scores against the outcomes sales reported.

Replays the events with the rules (the ``simulate`` oracle), judges each lead
that reached sales against its sales feedback (``outcomes.evaluation``), and
prints a summary; ``--json`` and ``--html`` write the whole report. With
``--rules-b`` it replays the same events with a second file and adds what would
change (``outcomes.compare``) and B's own figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream_app.commands.sources import Source, file_source, kafka_source
from stream_app.errors import InputError
from stream_app.ingest.tracks import SHIPPED_TRACKS, load_tracks
from stream_app.outcomes.evaluation import LADDER, Label, evaluate
from stream_app.outcomes.observe import Observation, observe
from stream_app.rules_file import Rules, load_rules

EPILOG = """\
what it needs: the events a worker scored (the same JSON lines `simulate` reads,
or --from-kafka) including the sales_feedback events sales sent back (accepted,
rejected, opportunity, won, lost). A lead is positive when its feedback reached
--outcome no later than --within after it first reached sales (MQL, PQL or SQL);
one with none by then is negative; one whose window is still open at the last
event is left out (censored).

what it reports: conversion by stage reached, by grade and by score decile;
ROC and PR AUC of the total, fit and engagement scores at the moment each lead
reached sales, and of every lead's scores at --cut (default: the median event
time) for the outcome in the --within after it; calibration (a
logistic fit of the outcome on the total); per rule: the judged leads it had
points for at the hand-off, their outcome rate against the base rate (lift,
with a 95% interval), and the MQLs it decided (the lead would not have crossed
the line at that moment without its points); review flags: MQL->SQL under
the file's funnel_review line, rules that never fired, rules with no evidence
either way (fewer than 30 judged leads), rules whose evidence runs against
their points.

too little data (fewer than --min-leads judged leads or --min-positive
positive ones) is a refusal naming what is missing, exit status 2.

examples:
  python -m tools generate --leads 3000 --seed 7 --outcomes truth > events.jsonl
  python -m stream_app evaluate --rules rules/default.yaml events.jsonl
  python -m stream_app evaluate --rules rules/default.yaml events.jsonl \\
      --json report.json --html report.html
  python -m stream_app evaluate --rules rules/default.yaml events.jsonl \\
      --rules-b proposed.yaml          # and what proposed.yaml would change
  python -m stream_app evaluate --rules rules/default.yaml --from-kafka \\
      --outcome opportunity --within 60d

exit status: 0 with a report, 2 on bad input or too little data.
"""


def parse_days(text: str) -> float:
    """``90d``, ``12w`` or a plain number of days."""
    raw = text.strip().lower()
    factor = 1.0
    if raw.endswith("d"):
        raw = raw[:-1]
    elif raw.endswith("w"):
        raw, factor = raw[:-1], 7.0
    try:
        value = float(raw) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected days like 90d or 12w, not {text!r}") from None
    if not 0 < value <= 3650:
        raise argparse.ArgumentTypeError(f"{text!r}: between 1 day and 10 years")
    return value


def parse_when(text: str) -> float:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def source_of(args: argparse.Namespace) -> Source:
    tracks = load_tracks(args.tracks)
    if args.from_kafka:
        if args.events:
            raise InputError("give an events file or --from-kafka, not both")
        return kafka_source(tracks, args.quiet)
    if not args.events:
        raise InputError("give an events file (JSON lines) or --from-kafka")
    return file_source(args.events, tracks, args.quiet)


def replay(source: Source, rules: Rules, cut: float | None, desc: str) -> Observation:
    found = observe(source.events(desc), rules, cut=cut)
    if source.bad:
        print(f"{source.bad} bad lines skipped (as simulate reports them)", file=sys.stderr)
    return found


def label_of(args: argparse.Namespace) -> Label:
    return Label(
        outcome=args.outcome,
        within_days=args.within,
        min_leads=args.min_leads,
        min_positive=args.min_positive,
    )


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _day(iso: str | None) -> str:
    return "?" if iso is None else iso[:10]


def headline(report: dict[str, Any], name: str) -> str:
    """One line of a report: its hand-offs, their outcome rate, the total's AUC over them."""
    leads, data = report["leads"], report["data"]
    auc = report["auc"]["at_handoff"]
    roc = (
        ""
        if auc is None
        else f"; total's ROC AUC over its own hand-offs {auc['total']['roc']:.3f} "
        f"[{auc['total']['roc_ci'][0]:.3f}, {auc['total']['roc_ci'][1]:.3f}]"
    )
    return (
        f"{name} ({report['rules_file']['source']}): {leads['reached_sales']:,} leads reached "
        f"sales, {leads['judged']:,} judged, {pct(leads['base_rate'])} {data['outcome']}{roc}"
    )


def summary_lines(report: dict[str, Any]) -> list[str]:
    data, leads = report["data"], report["leads"]
    out = [
        f"rules {report['rules_file']['version']} from {report['rules_file']['source']}",
        f"{data['events']:,} events from {_day(data['first_event_at'])} to "
        f"{_day(data['last_event_at'])}; {leads['identified']:,} leads, "
        f"{leads['reached_sales']:,} reached sales",
        f"outcome: {data['outcome']} within {data['within_days']:g} days of reaching sales: "
        f"{leads['judged']:,} leads judged ({leads['censored']:,} still in their window), "
        f"{leads['positive']:,} {data['outcome']} = {pct(leads['base_rate'])} base rate",
    ]
    for when, block in (
        ("at the hand-off", report["auc"]["at_handoff"]),
        ("at the cut", report["auc"]["at_cut"]),
    ):
        if block is None or "total" not in block:
            if block is not None:
                out.append(f"AUC {when} {_day(block.get('cut'))}: no positive in the window")
            continue
        head = f"AUC {when}" + (f" {_day(block['cut'])}" if "cut" in block else "")
        parts = []
        for name in ("total", "fit", "engagement"):
            row = block[name]
            lo, hi = row["roc_ci"]
            parts.append(f"{name} {row['roc']:.3f} [{lo:.3f}, {hi:.3f}] (PR {row['pr']:.3f})")
        out.append(
            f"{head} ({block['leads']:,} leads, {block['positive']:,} positive), ROC [95% CI]:"
        )
        out.append("  " + "; ".join(parts))
    conv = report["conversion"]
    out.append(
        "conversion by stage reached: "
        + ", ".join(f"{r['stage']} {pct(r['rate'])} of {r['leads']:,}" for r in conv["by_stage"])
    )
    out.append(
        "by grade at the hand-off: "
        + ", ".join(f"{r['grade']} {pct(r['rate'])} of {r['leads']:,}" for r in conv["by_grade"])
    )
    out.append("by score decile at the hand-off:")
    for row in conv["by_decile"]:
        out.append(
            f"  {row['decile']:>2}  total >= {row['min_score']:7.1f}  {row['leads']:5,} leads  "
            f"{pct(row['rate']):>6} {data['outcome']}"
        )
    cal = report["calibration"]
    if cal is not None:
        rises = "rises with the score" if cal["rises_with_score"] else "does NOT rise steadily"
        out.append(
            f"calibration: logistic fit {cal['model']['per_point']:+.4f} log-odds per point, "
            f"Brier {cal['brier']:.3f}; the observed rate {rises}"
        )
    out.append(
        f"rules (lift: the {data['outcome']} rate of the judged leads a rule had points for at "
        "the hand-off, over the base rate):"
    )
    out.append(
        f"  {'rule':26} {'kind':10} {'points':>6} {'leads':>6} {'rate':>6} "
        f"{'lift [95% CI]':>18} {'decided':>7}  evidence"
    )
    rows = sorted(
        report["rules"].items(), key=lambda kv: (kv[1]["lift"] is None, -(kv[1]["lift"] or 0))
    )
    for rule_id, row in rows:
        if not row["ever_fired"]:
            continue
        lift = (
            "-"
            if row["lift"] is None
            else f"{row['lift']:.2f} [{row['lift_ci'][0]:.2f}, {row['lift_ci'][1]:.2f}]"
        )
        out.append(
            f"  {rule_id:26} {row['kind']:10} {row['points']:6g} {row['fired_leads']:6,} "
            f"{pct(row['rate']):>6} {lift:>18} {row['decided_mqls']:7,}  {row['evidence']}"
        )
    out.append("review:" if report["review"] else "review: nothing flagged")
    for flag in report["review"]:
        out.append(f"  - {flag['message']}")
    return out


def _write(path: Path | None, text: str, what: str) -> None:
    if path is None:
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the {what}: {exc.strerror}") from None
    print(f"{what} written to {path}", file=sys.stderr)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules)
    rules_b = load_rules(args.rules_b) if args.rules_b else None
    source = source_of(args)
    cut = args.cut if args.cut is not None else source.median_time()
    label = label_of(args)
    observed = replay(source, rules, cut, "replay A" if rules_b else "replay")
    report = evaluate(observed, label)
    if rules_b is not None:
        from stream_app.outcomes.compare import compare_observations  # noqa: PLC0415

        observed_b = replay(source, rules_b, cut, "replay B")
        report["b"] = evaluate(observed_b, label)
        report["compare"] = compare_observations(observed, observed_b, label)
    for line in summary_lines(report):
        print(line)
    if rules_b is not None:
        from stream_app.commands.compare import compare_lines  # noqa: PLC0415

        print()
        print(headline(report["b"], "B"))
        for line in compare_lines(report["compare"]):
            print(line)
    _write(args.json, json.dumps(report, indent=2) + "\n", "JSON report")
    if args.html is not None:
        from stream_app.outcomes.html import render  # noqa: PLC0415

        _write(args.html, render(report), "HTML report")
    return 0


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("events", nargs="?", help="JSON-lines file of past events")
    parser.add_argument(
        "--from-kafka",
        action="store_true",
        help="read the input topics from the start of their retention instead of a file "
        "(LEADSTREAM_INPUT_TOPICS, else the native ones; LEADSTREAM_KAFKA_* settings)",
    )
    parser.add_argument(
        "--tracks",
        type=Path,
        default=SHIPPED_TRACKS,
        help="track-name mapping for Segment-spec lines (as simulate)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outcome",
        choices=list(LADDER),
        default="won",
        help="the positive outcome (opportunity counts won too; accepted counts both)",
    )
    parser.add_argument(
        "--within",
        type=parse_days,
        default=90.0,
        metavar="DAYS",
        help="days after reaching sales the outcome must come within (90d, 12w)",
    )
    parser.add_argument("--min-leads", type=int, default=200, help="judged leads needed")
    parser.add_argument("--min-positive", type=int, default=40, help="positive leads needed")


def add_command(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    cmd = sub.add_parser(
        "evaluate",
        help="judge a rules file against won and lost deals (AUC, lift per rule, review flags)",
        description="Replay past events with a rules file and judge its scores against the "
        "outcomes sales reported (sales_feedback events).",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    add_source_arguments(cmd)
    cmd.add_argument("--rules", required=True, type=Path, help="the rules file to judge")
    add_label_arguments(cmd)
    cmd.add_argument(
        "--cut",
        type=parse_when,
        metavar="TIME",
        help="ISO-8601 time of the second AUC (every lead's scores then, the outcome in the "
        "--within after it); default: the median event time",
    )
    cmd.add_argument("--rules-b", type=Path, metavar="B", help="a second rules file to compare")
    cmd.add_argument("--json", type=Path, metavar="OUT", help="write the whole report as JSON")
    cmd.add_argument("--html", type=Path, metavar="OUT", help="write a self-contained HTML report")
    cmd.set_defaults(handler=_cmd_evaluate)
