"""What a change of rules changes: who reaches MQL and SQL, when, and how those leads turned out.

The input is two runs over the same events: two ``simulate`` outputs, two
live transition topics (a champion's and a challenger's), or two replays
(``evaluate --rules-b``). Each becomes, per lead, the time it first reached
MQL (MQL, PQL or SQL, as the funnel counts it), the time it first reached
SQL, and the sales outcomes it got. The figures depend on no order and no
duplicate (a transition id counts once), so a live topic, read in any
partition order, gives the same figures as the offline file.

Outcomes come from the runs themselves: a ``sales_feedback`` transition's
detail names it (a feedback that changed nothing makes no transition; ``won``
always does). A lead counts as positive under the outcome if either run saw
the feedback (the events are the same; only the stages differ).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.transitions import StageTransition
from stream_app.outcomes.evaluation import LADDER, Label
from stream_app.outcomes.observe import Observation

DAY = 86400.0
QUALIFIED = ("mql", "pql", "sql")


@dataclass
class Path:
    mql_at: float | None = None
    sql_at: float | None = None
    outcomes: set[str] = field(default_factory=set)


def _earliest(held: float | None, t: float) -> float:
    return t if held is None or t < held else held


def paths_of_transitions(transitions: Iterable[StageTransition]) -> dict[str, Path]:
    """Per lead, from transitions (each ``transition_id`` once)."""
    seen: set[str] = set()
    out: dict[str, Path] = {}
    for t in transitions:
        if t.transition_id in seen:
            continue
        seen.add(t.transition_id)
        path = out.setdefault(t.lead_id, Path())
        at = t.occurred_at.timestamp()
        if t.to_stage in QUALIFIED or "mql" in t.passed:
            path.mql_at = _earliest(path.mql_at, at)
        if t.to_stage == "sql":
            path.sql_at = _earliest(path.sql_at, at)
        if t.reason == "sales_feedback" and t.detail:
            path.outcomes.add(t.detail.split(":", 1)[0])
    return out


def paths_of_observation(observation: Observation) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for lead, record in observation.leads.items():
        out[lead] = Path(
            mql_at=record.handoff.at if record.handoff else None,
            sql_at=record.sql_at,
            outcomes={o for _, o in record.feedback},
        )
    return out


def _rate(leads: list[str], positive: set[str], told: set[str]) -> dict[str, Any]:
    """How many of ``leads`` were positive, and how many sales said anything about at all
    (a lead sales never saw has no outcome: its rate says little)."""
    hits = sum(1 for lead in leads if lead in positive)
    return {
        "leads": len(leads),
        "positive": hits,
        "rate": hits / len(leads) if leads else None,
        "with_feedback": sum(1 for lead in leads if lead in told),
    }


def _volume(paths: dict[str, Path]) -> dict[str, Any]:
    mqls = sum(1 for p in paths.values() if p.mql_at is not None)
    sqls = sum(1 for p in paths.values() if p.sql_at is not None)
    both = sum(1 for p in paths.values() if p.mql_at is not None and p.sql_at is not None)
    return {"mql": mqls, "sql": sqls, "mql_to_sql_rate": both / mqls if mqls else None}


def _stage(
    a: dict[str, Path], b: dict[str, Path], stage: str, positive: set[str], told: set[str]
) -> dict[str, Any]:
    def when(paths: dict[str, Path], lead: str) -> float | None:
        path = paths.get(lead)
        return None if path is None else (path.mql_at if stage == "mql" else path.sql_at)

    leads = sorted(set(a) | set(b))
    only_a = [lead for lead in leads if when(a, lead) is not None and when(b, lead) is None]
    only_b = [lead for lead in leads if when(b, lead) is not None and when(a, lead) is None]
    shifts = []
    for lead in leads:
        ta, tb = when(a, lead), when(b, lead)
        if ta is not None and tb is not None:
            shifts.append((tb - ta) / DAY)
    earlier = sum(1 for s in shifts if s < 0)
    later = sum(1 for s in shifts if s > 0)
    return {
        "both": len(shifts),
        "only_a": len(only_a),
        "only_b": len(only_b),
        "earlier_under_b": earlier,
        "later_under_b": later,
        "same_time": len(shifts) - earlier - later,
        "median_shift_days": statistics.median(shifts) if shifts else None,
        "dropped_by_b": _rate(only_a, positive, told),
        "added_by_b": _rate(only_b, positive, told),
        "kept": _rate(
            [lead for lead in leads if when(a, lead) is not None and when(b, lead) is not None],
            positive,
            told,
        ),
    }


def compare_paths(a: dict[str, Path], b: dict[str, Path], outcome: str = "won") -> dict[str, Any]:
    """The figures (JSON-ready) of B against A."""
    hits = LADDER[outcome]
    positive = {
        lead
        for paths in (a, b)
        for lead, path in paths.items()
        if any(o in hits for o in path.outcomes)
    }
    told = {lead for paths in (a, b) for lead, path in paths.items() if path.outcomes}

    def mqls(paths: dict[str, Path]) -> dict[str, Any]:
        qualified = [lead for lead, p in paths.items() if p.mql_at is not None]
        return _rate(qualified, positive, told)

    return {
        "outcome": outcome,
        "leads": len(set(a) | set(b)),
        "a": {**_volume(a), "mql_positive": mqls(a)},
        "b": {**_volume(b), "mql_positive": mqls(b)},
        "mql": _stage(a, b, "mql", positive, told),
        "sql": _stage(a, b, "sql", positive, told),
    }


def compare_transitions(
    a: Iterable[StageTransition], b: Iterable[StageTransition], outcome: str = "won"
) -> dict[str, Any]:
    return compare_paths(paths_of_transitions(a), paths_of_transitions(b), outcome)


def compare_observations(a: Observation, b: Observation, label: Label) -> dict[str, Any]:
    return compare_paths(paths_of_observation(a), paths_of_observation(b), label.outcome)
