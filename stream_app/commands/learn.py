"""``learn``: propose points from outcomes, proven on a later period, as a rules file.

The model is ``outcomes.model`` (needs the ``leadstream[learn]`` extra); the
file is ``outcomes.proposal``. A proposal is written only when it ranks the
held-out (newer) leads better than the current file, by a paired interval
that excludes no gain; otherwise learn says so and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream_app.commands.evaluate import (
    add_label_arguments,
    add_source_arguments,
    label_of,
    replay,
    source_of,
)
from stream_app.errors import InputError
from stream_app.outcomes.evaluation import Label, judge, require_enough
from stream_app.outcomes.model import (
    INSTALL_HINT,
    Fitted,
    Heldout,
    features_of,
    fit,
    heldout,
    precision_line,
)
from stream_app.outcomes.observe import Observation
from stream_app.outcomes.proposal import Lines, header, rewrite, whole_points
from stream_app.rules_file import Rules, load_rules

EPILOG = f"""\
how: every lead that reached sales under --rules and whose outcome is known
(as `evaluate` judges them) is one row: each engagement rule's and signal's
decayed, capped share of its score at that moment, in events, and each fit
rule's match. The oldest leads train an L2-regularised logistic regression
(strength chosen by time-ordered cross-validation on them); the newest
--test-share are held out. New points are the coefficients on the file's
scale (the training leads' mean total at the hand-off is kept), rounded;
caps keep their number of events; MQL/SQL lines stay unless
--target-precision sets the MQL line where the training leads above it were
that share positive. Rules with too little evidence keep their points and
are named.

what it claims: only what it measured on the held-out leads: the ROC AUC of
--rules and of the proposal at the moment those leads reached sales, and the
paired (DeLong) interval of the difference. The file is written only if that
interval lies above 0; on outcomes nothing predicts it says there is nothing
to learn. Then try it: `evaluate --rules-b`, `compare`, a challenger worker
(docs/outcomes.md).

needs: {INSTALL_HINT}.

examples:
  python -m tools generate --leads 3000 --seed 7 --outcomes truth > events.jsonl
  python -m stream_app learn --rules rules/default.yaml events.jsonl --out proposed.yaml
  python -m stream_app rules check proposed.yaml
  python -m stream_app evaluate --rules rules/default.yaml events.jsonl --rules-b proposed.yaml
  python -m stream_app learn --rules rules/default.yaml --from-kafka --out proposed.yaml \\
      --outcome opportunity --target-precision 0.35

exit status: 0 with a proposal written, 1 when there is nothing better to propose
(no file written), 2 on bad input, too little data or a missing extra.
"""


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).date().isoformat()


@dataclass
class Proposal:
    fitted: Fitted
    held: Heldout
    lines: Lines | None
    floored: list[str]
    judged: int
    positive: int


def report_lines(args: argparse.Namespace, found: Proposal, rules: Rules, source: str) -> list[str]:
    fitted, held, lines, floored = found.fitted, found.held, found.lines, found.floored
    judged_n, positive_n = found.judged, found.positive
    train, test = fitted.train, fitted.test
    out = [
        f"learned from {source} with {rules.source} ({rules.stamp}):",
        f"outcome {args.outcome} within {args.within:g} days of reaching sales; "
        f"{judged_n:,} leads judged, {positive_n:,} positive",
        f"trained on the {len(train):,} oldest (hand-offs {_day(train[0].handoff.at)} to "
        f"{_day(train[-1].handoff.at)}, {sum(j.positive for j in train):,} positive); "
        f"held out the {len(test):,} newest ({_day(test[0].handoff.at)} to "
        f"{_day(test[-1].handoff.at)}, {held.positive:,} positive)",
        "held-out ROC AUC at the hand-off [95% CI]:",
        f"  {rules.source}: {held.auc_current:.3f} "
        f"[{held.auc_current_ci[0]:.3f}, {held.auc_current_ci[1]:.3f}]",
        f"  proposal: {held.auc_proposed:.3f} "
        f"[{held.auc_proposed_ci[0]:.3f}, {held.auc_proposed_ci[1]:.3f}]",
        f"  difference: {held.difference[0]:+.3f} "
        f"[{held.difference[1]:+.3f}, {held.difference[2]:+.3f}] (paired, DeLong)",
        f"logistic regression, L2 with C={fitted.C:.3g}; {fitted.scale:.1f} points per log-odd; "
        "coefficient per event (fit: per match), 95% Wald interval:",
        f"  {'rule':26} {'old':>5} {'new':>5}  coefficient [95% CI]",
    ]
    for feature in sorted(fitted.features, key=lambda f: -fitted.coef[f.rule_id]):
        lo, hi = fitted.interval[feature.rule_id]
        mark = "" if lo > 0 or hi < 0 else "  (interval spans 0)"
        out.append(
            f"  {feature.rule_id:26} {feature.points:5g} {fitted.points[feature.rule_id]:5g}  "
            f"{fitted.coef[feature.rule_id]:+.3f} [{lo:+.3f}, {hi:+.3f}]{mark}"
        )
    if floored:
        out.append(
            "held at one point (the model gives them less; a rule cannot have 0): "
            + ", ".join(sorted(floored))
        )
    if fitted.kept:
        out.append("kept their points (no evidence either way):")
        by_why: dict[str, list[str]] = {}
        for rule, (why, fired) in sorted(fitted.kept.items()):
            by_why.setdefault(why, []).append(f"{rule} ({fired})")
        for why, kept in sorted(by_why.items()):
            out.append(f"  {why} (how many in brackets): {', '.join(kept)}")
    stages = rules.spec.stages
    if lines is None:
        out.append(
            f"lines kept: MQL {stages.mql.min_total:g} (fit {stages.mql.min_fit:g}, "
            f"engagement {stages.mql.min_engagement:g}), SQL {stages.sql.min_total:g}"
        )
    else:
        out.append(
            f"lines re-set for a precision of {args.target_precision:g} on the training leads: "
            f"MQL {lines.mql:g}, SQL {lines.sql:g}, recycle below {lines.recycle:g}"
        )
    return out


def _lines_for(target: float | None, fitted: Fitted, rules: Rules) -> Lines | None:
    if target is None:
        return None
    line = precision_line(fitted, rules, target)
    if line is None:
        raise InputError(
            f"no score line gives a precision of {target:g} on the training "
            "leads; ask for less, or keep the lines"
        )
    stages = rules.spec.stages
    mql = float(round(line))
    sql = max(float(stages.sql.min_total), mql + (stages.sql.min_total - stages.mql.min_total))
    recycle = mql - (stages.mql.min_total - stages.recycle.below_total)
    return Lines(mql=mql, sql=sql if sql > mql else mql + 1, recycle=recycle)


def propose(
    observation: Observation,
    label: Label,
    *,
    test_share: float = 0.3,
    min_fired: int = 20,
    target_precision: float | None = None,
) -> Proposal:
    """Fit, round, set the lines, and measure on the held-out leads (no file written)."""
    rules = observation.rules
    judged, censored = judge(observation, label)
    require_enough(judged, label, censored)
    fitted = fit(rules, judged, test_share=test_share, min_fired=min_fired)
    raw = {f.rule_id: f.points for f in features_of(rules)}
    raw.update({rule: coef * fitted.scale for rule, coef in fitted.coef.items()})
    fitted.points, floored = whole_points(raw, rules)
    lines = _lines_for(target_precision, fitted, rules)
    return Proposal(
        fitted,
        heldout(fitted, rules),
        lines,
        floored,
        len(judged),
        sum(j.positive for j in judged),
    )


def _cmd_learn(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules)
    if not 0.1 <= args.test_share <= 0.5:
        raise InputError("--test-share must be between 0.1 and 0.5")
    if args.target_precision is not None and not 0 < args.target_precision < 1:
        raise InputError("--target-precision must be between 0 and 1, e.g. 0.35")
    text = Path(rules.source).read_text(encoding="utf-8")
    source = source_of(args)
    found = propose(
        replay(source, rules, None, "replay"),
        label_of(args),
        test_share=args.test_share,
        min_fired=args.min_fired,
        target_precision=args.target_precision,
    )
    held = found.held
    summary = report_lines(args, found, rules, source.label)
    for line in summary:
        print(line)
    if not held.signal:
        print(
            "nothing to learn: on the held-out leads the proposal ranks no better than chance "
            "(its interval reaches 0.5); the outcomes do not follow anything the rules see. "
            "No file written."
        )
        return 1
    if not held.better:
        print(
            f"no significant gain over {rules.source} on the held-out leads (the interval of "
            "the difference reaches 0). No file written."
        )
        return 1
    version = f"{rules.spec.version}-learned"[:64]
    body = rewrite(text, rules, found.fitted.points, version, found.lines)
    head = header(
        [
            f"PROPOSED by `python -m stream_app learn` ({datetime.now(UTC):%Y-%m-%d}):",
            "review it, then try it: evaluate --rules-b, compare, a challenger (docs/outcomes.md).",
            *summary,
        ]
    )
    try:
        args.out.write_text(head + body, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{args.out}: cannot write: {exc.strerror}") from None
    print(f"proposal written to {args.out} (version {version}); check it:", file=sys.stderr)
    print(f"  python -m stream_app rules check {args.out}", file=sys.stderr)
    return 0


def add_command(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    cmd = sub.add_parser(
        "learn",
        help="propose better points from outcomes: a rules file, proven on a later period",
        description="Fit the rules' points to the outcomes sales reported and write a proposed "
        "rules file, if it beats the current one on the newest leads.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    add_source_arguments(cmd)
    cmd.add_argument("--rules", required=True, type=Path, help="the rules file to start from")
    cmd.add_argument("--out", required=True, type=Path, help="where to write the proposal")
    add_label_arguments(cmd)
    cmd.add_argument(
        "--test-share",
        type=float,
        default=0.3,
        help="share of the newest judged leads held out to test on",
    )
    cmd.add_argument(
        "--min-fired",
        type=int,
        default=20,
        help="training leads a rule needs points for (and not for) to be learned",
    )
    cmd.add_argument(
        "--target-precision",
        type=float,
        metavar="SHARE",
        help="re-set the MQL line where this share of the training leads above it is positive",
    )
    cmd.set_defaults(handler=_cmd_learn)
