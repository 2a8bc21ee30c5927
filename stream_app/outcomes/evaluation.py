"""What ``evaluate`` reports: does the score predict the outcome, and which rule earns its points?

The label: a lead is positive when sales feedback says it reached the outcome
(``won``; ``opportunity`` also counts a won lead, ``accepted`` an opportunity
or a won one) no later than ``within`` days after it reached sales. A lead
with no such feedback then counts as negative, as HubSpot's "won within 90
days" does, but only once its window has closed inside the data: a lead that
reached sales 10 days before the last event is not judged yet (censored).

Too little data is a refusal (``NotEnoughOutcomes``) that names what is
missing, not a number: the defaults ask for 200 judged leads and 40 positive
ones (Salesforce Einstein asks 1,000 leads and 120 conversions, Adobe 10
conversions per goal; docs/domain.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from stream_app.errors import InputError
from stream_app.outcomes.observe import Handoff, LeadRecord, Observation
from stream_app.outcomes.stats import (
    average_precision,
    bin_of,
    delong,
    logistic_1d,
    roc_points,
    score_bins,
    sigmoid,
    wilson,
)
from stream_app.scoring.rules import Rules

DAY = 86400.0
#: Outcome -> the feedback that says a lead reached it.
LADDER = {
    "won": ("won",),
    "opportunity": ("opportunity", "won"),
    "accepted": ("accepted", "opportunity", "won"),
}
#: A rule that fired for fewer judged leads than this has no evidence either way.
MIN_RULE_LEADS = 30
SCORES = ("total", "fit", "engagement")


class NotEnoughOutcomes(InputError):
    """Too few judged leads or positives to say anything."""


@dataclass(frozen=True)
class Label:
    outcome: str = "won"
    within_days: float = 90.0
    min_leads: int = 200
    min_positive: int = 40

    def hit(self, outcome: str) -> bool:
        return outcome in LADDER[self.outcome]


@dataclass(frozen=True)
class Judged:
    """A lead that reached sales and whose outcome is known (positive, or its window closed)."""

    record: LeadRecord
    handoff: Handoff
    positive: bool


def judge(observation: Observation, label: Label) -> tuple[list[Judged], int]:
    """The judged leads, oldest handoff first, and how many were left out (censored)."""
    end = observation.last_at or 0.0
    window = label.within_days * DAY
    judged: list[Judged] = []
    censored = 0
    for record in observation.leads.values():
        h = record.handoff
        if h is None:
            continue
        positive = any(label.hit(o) and t <= h.at + window for t, o in record.feedback)
        if positive or h.at + window <= end:
            judged.append(Judged(record, h, positive))
        else:
            censored += 1
    judged.sort(key=lambda j: (j.handoff.at, j.record.lead_id))
    return judged, censored


def require_enough(judged: list[Judged], label: Label, censored: int) -> None:
    positives = sum(j.positive for j in judged)
    if len(judged) >= label.min_leads and positives >= label.min_positive:
        return
    missing = []
    if len(judged) < label.min_leads:
        missing.append(
            f"{len(judged)} leads reached sales with their {label.within_days:g}-day window "
            f"closed (need {label.min_leads}; {censored} more are still inside it)"
        )
    if positives < label.min_positive:
        missing.append(f"{positives} of them {label.outcome} (need {label.min_positive})")
    raise NotEnoughOutcomes(
        "not enough outcomes to judge the scoring: "
        + "; ".join(missing)
        + ". Give more history (sales_feedback events for the leads that reached sales), "
        "or lower --min-leads / --min-positive knowingly"
    )


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def _rate_row(key: str, value: Any, leads: int, positive: int) -> dict[str, Any]:
    lo, hi = wilson(positive, leads)
    return {
        key: value,
        "leads": leads,
        "positive": positive,
        "rate": positive / leads if leads else None,
        "rate_ci": [lo, hi],
    }


def auc_block(columns: dict[str, list[float]], labels: list[bool]) -> dict[str, Any] | None:
    found = delong(list(columns.values()), labels)
    if found is None:
        return None
    out: dict[str, Any] = {}
    for k, (name, column) in enumerate(columns.items()):
        lo, hi = found.interval(k)
        out[name] = {
            "roc": found.aucs[k],
            "roc_ci": [lo, hi],
            "pr": average_precision(column, labels),
        }
    out["leads"] = len(labels)
    out["positive"] = sum(labels)
    return out


def _still_reaches(h: Handoff, kind: str, points: float, rules: Rules) -> bool:
    """Whether the lead would have reached sales at that moment without ``points``."""
    stages = rules.spec.stages
    total = h.total - points
    fit = h.fit - points if kind == "fit" else h.fit
    engagement = h.engagement - points if kind != "fit" else h.engagement
    line = stages.mql
    if total >= line.min_total and fit >= line.min_fit and engagement >= line.min_engagement:
        return True
    if h.reason == "hand_raise":
        return fit >= stages.hand_raise.min_fit
    if h.reason == "pql_activation" and stages.pql is not None:
        return fit >= stages.pql.min_fit
    return False


def rule_table(
    observation: Observation, judged: list[Judged], base_rate: float
) -> dict[str, dict[str, Any]]:
    rules = observation.rules
    spec = rules.spec
    kinds: dict[str, tuple[str, float]] = {
        r.id: ("engagement", r.points) for r in spec.engagement.rules
    }
    kinds.update({s.id: ("signal", s.points) for s in spec.signals})
    kinds.update({r.id: ("fit", r.points) for r in spec.fit.rules})
    handoffs = [r.handoff for r in observation.leads.values() if r.handoff is not None]
    out: dict[str, dict[str, Any]] = {}
    for rule_id, (kind, points) in kinds.items():

        def share(h: Handoff, rule_id: str = rule_id, kind: str = kind) -> float:
            return (h.fit_parts if kind == "fit" else h.parts).get(rule_id, 0.0)

        fired = [j for j in judged if abs(share(j.handoff)) >= 0.005]
        positive = sum(j.positive for j in fired)
        decided = [
            h for h in handoffs if share(h) > 0 and not _still_reaches(h, kind, share(h), rules)
        ]
        decided_ids = {id(h) for h in decided}
        decided_judged = [j for j in judged if id(j.handoff) in decided_ids]
        lo, hi = wilson(positive, len(fired))
        rate = positive / len(fired) if fired else None
        if not fired or len(fired) < MIN_RULE_LEADS:
            evidence = "none"
        elif base_rate and lo > base_rate:
            evidence = "for"
        elif base_rate and hi < base_rate:
            evidence = "against"
        else:
            evidence = "unclear"
        out[rule_id] = {
            "kind": kind,
            "points": points,
            "fired_leads": len(fired),
            "positive": positive,
            "rate": rate,
            "lift": rate / base_rate if rate is not None and base_rate else None,
            "lift_ci": [lo / base_rate, hi / base_rate] if fired and base_rate else None,
            "decided_mqls": len(decided),
            "decided_positive_rate": (
                sum(j.positive for j in decided_judged) / len(decided_judged)
                if decided_judged
                else None
            ),
            "ever_fired": rule_id in observation.fired,
            "evidence": evidence,
        }
    return out


def _calibration(judged: list[Judged]) -> dict[str, Any] | None:
    totals = [j.handoff.total for j in judged]
    labels = [j.positive for j in judged]
    if not judged or all(labels) or not any(labels):
        return None
    a, b = logistic_1d(totals, labels)
    edges = score_bins(totals)
    groups: dict[int, list[Judged]] = {}
    for j in judged:
        groups.setdefault(bin_of(j.handoff.total, edges), []).append(j)
    rows = []
    for k in sorted(groups):
        members = groups[k]
        mean = sum(j.handoff.total for j in members) / len(members)
        rows.append(
            {
                "bin": k + 1,
                "mean_score": mean,
                "leads": len(members),
                "observed": sum(j.positive for j in members) / len(members),
                "expected": sum(sigmoid(a + b * j.handoff.total) for j in members) / len(members),
            }
        )
    brier = sum((sigmoid(a + b * t) - y) ** 2 for t, y in zip(totals, labels, strict=True))
    observed = [r["observed"] for r in rows]
    return {
        "model": {"intercept": a, "per_point": b},
        "bins": rows,
        "brier": brier / len(judged),
        "rises_with_score": all(x <= y for x, y in pairwise(observed)),
    }


def _by(judged: Iterable[Judged], key: str, value_of: Any) -> list[dict[str, Any]]:
    counts: dict[Any, list[int]] = {}
    for j in judged:
        row = counts.setdefault(value_of(j), [0, 0])
        row[0] += 1
        row[1] += j.positive
    return [_rate_row(key, k, n, p) for k, (n, p) in sorted(counts.items())]


def evaluate(observation: Observation, label: Label = Label()) -> dict[str, Any]:
    """The report (JSON-ready); raises ``NotEnoughOutcomes`` when it cannot judge."""
    judged, censored = judge(observation, label)
    require_enough(judged, label, censored)
    rules = observation.rules
    labels = [j.positive for j in judged]
    base_rate = sum(labels) / len(labels)
    window = label.within_days * DAY
    at_handoff = auc_block(
        {name: [getattr(j.handoff, name) for j in judged] for name in SCORES}, labels
    )
    if at_handoff is not None:
        at_handoff["total"]["curve"] = roc_points([j.handoff.total for j in judged], labels)
    at_cut = None
    if observation.cut is not None:
        cut = observation.cut
        rows = []
        for record in observation.leads.values():
            if record.at_cut is None or any(label.hit(o) and t <= cut for t, o in record.feedback):
                continue
            positive = any(label.hit(o) and cut < t <= cut + window for t, o in record.feedback)
            rows.append((record.at_cut, positive))
        block = auc_block(
            {name: [getattr(c, name) for c, _ in rows] for name in SCORES}, [p for _, p in rows]
        )
        at_cut = {"cut": _iso(cut), **(block or {"leads": len(rows), "positive": 0})}
    edges = score_bins([j.handoff.total for j in judged])
    reached: Counter[str] = Counter()
    reached_pos: Counter[str] = Counter()
    for record in observation.leads.values():
        reached[record.reached] += 1
        reached_pos[record.reached] += any(label.hit(o) for _, o in record.feedback)
    outcomes: Counter[str] = Counter()
    for record in observation.leads.values():
        for outcome in {o for _, o in record.feedback}:
            outcomes[outcome] += 1
    table = rule_table(observation, judged, base_rate)
    return {
        "rules_file": {"source": rules.source, "version": rules.stamp},
        "data": {
            "events": observation.events,
            "first_event_at": _iso(observation.first_at),
            "last_event_at": _iso(observation.last_at),
            "outcome": label.outcome,
            "within_days": label.within_days,
        },
        "leads": {
            "identified": len(observation.leads),
            "reached_sales": sum(1 for r in observation.leads.values() if r.handoff),
            "judged": len(judged),
            "censored": censored,
            "with_feedback": sum(1 for j in judged if j.record.feedback),
            "positive": sum(labels),
            "base_rate": base_rate,
            "feedback_only": observation.feedback_only,
        },
        "outcomes": dict(sorted(outcomes.items())),
        "auc": {"at_handoff": at_handoff, "at_cut": at_cut},
        "conversion": {
            "by_stage": [
                _rate_row("stage", s, reached[s], reached_pos[s])
                for s in ("lead", "mql", "pql", "sql")
                if reached[s]
            ],
            "by_grade": _by(judged, "grade", lambda j: j.handoff.grade),
            "by_decile": [
                {**row, "min_score": edges[row["decile"] - 1]}
                for row in _by(judged, "decile", lambda j: bin_of(j.handoff.total, edges) + 1)
            ],
        },
        "calibration": _calibration(judged),
        "rules": table,
        "review": review(observation, table),
    }


def review(observation: Observation, table: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The flags a quarterly review starts from."""
    flags: list[dict[str, Any]] = []
    judged_mqls = observation.funnel.review
    if judged_mqls is not None and judged_mqls.needs_review:
        flags.append({"flag": "mql_to_sql_below_line", "message": judged_mqls.line()})
    never = sorted(r for r, row in table.items() if not row["ever_fired"])
    if never:
        flags.append(
            {
                "flag": "never_fired",
                "rules": never,
                "message": f"rules that never fired: {', '.join(never)}",
            }
        )
    none = sorted(r for r, row in table.items() if row["ever_fired"] and row["evidence"] == "none")
    if none:
        flags.append(
            {
                "flag": "no_evidence",
                "rules": none,
                "message": f"rules that fired for fewer than {MIN_RULE_LEADS} judged leads "
                f"(no evidence either way): {', '.join(none)}",
            }
        )
    against = sorted(
        r
        for r, row in table.items()
        if (row["evidence"] == "against" and row["points"] > 0)
        or (row["evidence"] == "for" and row["points"] < 0)
    )
    if against:
        flags.append(
            {
                "flag": "points_against_evidence",
                "rules": against,
                "message": "rules whose leads convert the other way than their points say: "
                + ", ".join(against),
            }
        )
    return flags
