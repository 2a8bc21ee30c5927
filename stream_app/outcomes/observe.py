"""Replay past events with a rules file and note what judging it needs, lead by lead.

The replay is ``scoring.replay.Replay``, the oracle ``simulate`` runs, so the
moments and scores here are the ones the live worker published. For each
lead: the moment it first reached sales (its first transition to MQL, PQL or
SQL, or one that passed MQL on the way), its scores then, each rule's share
then, unrounded (``view_of`` of the state at that moment), and every piece of
sales feedback it got. With a cut date, also every lead's scores at the cut
(as of the events read before the first one dated after it: a file or the
topics in event-time order, as the generator and most pipelines write them).

A lead whose first qualification was by a rules switch or the decay sweep
cannot occur here: neither runs in a replay of events alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.events import InputEvent, SalesFeedback
from stream_app.scoring.funnel import Funnel, funnel
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.scoring.view import view_of


@dataclass(frozen=True, slots=True)
class Handoff:
    """A lead's first arrival at sales under the rules: when, how, and its scores then."""

    at: float
    stage: str  # mql, pql or sql
    reason: str
    total: float
    fit: float
    engagement: float
    grade: str
    fit_parts: dict[str, float]  # fit rule id -> points
    parts: dict[str, float]  # engagement rule or signal id -> decayed, capped points


@dataclass(frozen=True, slots=True)
class AtCut:
    total: float
    fit: float
    engagement: float


@dataclass
class LeadRecord:
    lead_id: str
    handoff: Handoff | None = None
    feedback: list[tuple[float, str]] = field(default_factory=list)  # (event time, outcome)
    at_cut: AtCut | None = None
    reached: str = "lead"  # highest of lead < mql < pql < sql reached by score
    sql_at: float | None = None  # the first transition to SQL


@dataclass
class Observation:
    rules: Rules
    leads: dict[str, LeadRecord]
    events: int
    first_at: float | None
    last_at: float | None
    fired: set[str]  # every rule id that counted for any lead at any time
    funnel: Funnel
    cut: float | None = None
    feedback_only: int = 0  # leads named by sales feedback and by no other event


_RANK = {"lead": 0, "mql": 1, "pql": 2, "sql": 3}


def observe(events: Iterable[InputEvent], rules: Rules, *, cut: float | None = None) -> Observation:
    """Replay ``events`` (decoded, in the order they are to be applied) through ``rules``."""
    replay = Replay(rules)
    leads: dict[str, LeadRecord] = {}
    fired: set[str] = set()
    touched: set[str] = set()  # leads named by an event other than sales feedback
    count = 0
    first_at = last_at = None
    cut_taken = cut is None
    for event in events:
        t = event.occurred_at.timestamp()
        if not cut_taken and cut is not None and t > cut:
            _snapshot(replay, leads, cut)
            cut_taken = True
        count += 1
        first_at = t if first_at is None or t < first_at else first_at
        last_at = t if last_at is None or t > last_at else last_at
        step = replay.process(event, with_update=False)
        if step.status != "counted":
            continue
        state = replay.states.get(step.key)
        if state is None or state.lead_id is None:
            continue
        fired.update(state.buckets)
        fired.update(state.fit_points)
        record = leads.get(state.lead_id)
        if record is None:
            record = leads[state.lead_id] = LeadRecord(state.lead_id)
        if isinstance(event, SalesFeedback):
            record.feedback.append((t, event.outcome))
        else:
            touched.add(state.lead_id)
        for moved in step.transitions:
            stage = "mql" if "mql" in moved.passed else moved.to_stage
            for reached in (stage, moved.to_stage):
                if _RANK.get(reached, 0) > _RANK[record.reached]:
                    record.reached = reached
            if moved.to_stage == "sql" and record.sql_at is None:
                record.sql_at = moved.occurred_at.timestamp()
            if record.handoff is None and stage in ("mql", "pql", "sql"):
                at = moved.occurred_at.timestamp()
                view = view_of(state, rules, at)
                fit_parts, parts, _ = view.parts or ({}, {}, {})
                record.handoff = Handoff(
                    at=at,
                    stage=moved.to_stage,
                    reason=moved.reason,
                    total=view.total,
                    fit=view.fit,
                    engagement=view.engagement,
                    grade=view.grade,
                    fit_parts=dict(fit_parts),
                    parts={k: v for k, v in parts.items() if v},
                )
    if not cut_taken and cut is not None:
        _snapshot(replay, leads, cut)
    return Observation(
        rules=rules,
        leads=leads,
        events=count,
        first_at=first_at,
        last_at=last_at,
        fired=fired,
        funnel=funnel(replay.leads(), rules),
        cut=cut,
        feedback_only=sum(1 for lead in leads if lead not in touched),
    )


def _snapshot(replay: Replay, leads: dict[str, LeadRecord], cut: float) -> None:
    for state in replay.leads():
        assert state.lead_id is not None
        view = view_of(state, replay.rules, max(cut, state.newest_at or cut))
        record = leads.get(state.lead_id)
        if record is None:
            record = leads[state.lead_id] = LeadRecord(state.lead_id)
        record.at_cut = AtCut(view.total, view.fit, view.engagement)
