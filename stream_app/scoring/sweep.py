"""Time-based changes: when decay alone changes a lead's stage, SLA deadlines, and making both.

A demotion carries the event time at which the score crossed the recycle
line (computed exactly), not the time the sweep ran, so the same events give
the same transitions whenever and however often the sweep runs. An SLA breach
likewise carries its deadline, the event time of the transition into the
stage plus the stage's ``sla_hours``: the same breach, with the same id, from
``simulate --sweep-at``, from the live timer, or from the lead's next event.
``state.due_at`` is the earlier of the two times, so one timer serves both.
"""

from __future__ import annotations

from schemas.transitions import SlaBreach, StageTransition
from stream_app.scoring.outlook import next_change_at
from stream_app.scoring.outputs import sla_breach
from stream_app.scoring.rules import Rules
from stream_app.scoring.sla import sla_deadline
from stream_app.scoring.stages import move, target
from stream_app.scoring.state import QUALIFIED, LeadState
from stream_app.scoring.view import ScoreView, view_of


def next_due_at(state: LeadState, rules: Rules, view: ScoreView | None = None) -> float | None:
    """When the timer must look at this lead again: a decay change or an SLA deadline."""
    found = (next_change_at(state, rules, view), sla_deadline(state, rules))
    times = [t for t in found if t is not None]
    return min(times) if times else None


def advance_to(
    state: LeadState, rules: Rules, upto: float
) -> tuple[list[StageTransition], list[SlaBreach]]:
    """Make every time-driven change due at or before ``upto`` (changing ``state``).

    In event-time order: an SLA deadline before (or at) a decay demotion is a
    breach of a lead still waiting; a demotion first means it no longer waits.
    """
    if state.scored_with == rules.stamp and (state.due_at is None or state.due_at > upto):
        return [], []  # the cached due time is fresh: nothing is due yet
    moved: list[StageTransition] = []
    breaches: list[SlaBreach] = []
    for _ in range(6):  # a breach, a demotion, at most a re-promotion; never loops
        due = next_change_at(state, rules)
        deadline = sla_deadline(state, rules)
        if deadline is not None and deadline <= upto and (due is None or deadline <= due):
            view = view_of(state, rules, deadline)
            breaches.append(sla_breach(state, deadline, view, rules))
            state.sla_breached = True
            continue
        if due is None or due > upto:
            break
        view = view_of(state, rules, due)
        if state.stage in QUALIFIED:
            moved.append(move(state, "recycled", "decay", None, due, view, rules, None))
            continue
        found = target(state, view, rules, due)
        if found is None:
            break
        moved.append(move(state, found[0], found[1], found[2], due, view, rules, None))
    return moved, breaches
