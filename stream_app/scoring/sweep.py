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
from stream_app.scoring.decay import crossing_time, decay
from stream_app.scoring.outputs import sla_breach
from stream_app.scoring.rules import Rules
from stream_app.scoring.sla import sla_deadline
from stream_app.scoring.stages import move, target
from stream_app.scoring.state import DAY, QUALIFIED, SALES_OWNED, LeadState
from stream_app.scoring.view import (
    ScoreView,
    engagement_of,
    engagement_settled,
    refresh_profile_cache,
    settle_time,
    view_of,
)


def _has_negative_points(state: LeadState, rules: Rules) -> bool:
    negative = rules.negative_ids
    return bool(negative) and not (
        negative.isdisjoint(state.buckets) and negative.isdisjoint(state.archived)
    )


def next_change_at(state: LeadState, rules: Rules, view: ScoreView | None = None) -> float | None:
    """Event time at which decay alone changes this lead's stage, if it ever does.

    ``view``, if given, must be of the state as it is now: the engagement at
    the settle time is then summed in the order the engine's view pass used
    (rule by rule, archives last: ``engagement_settled``), else in ``engagement_of``'s.
    """
    if state.lead_id is None or state.stage in SALES_OWNED or state.stage == "disqualified":
        return None
    if state.stage not in QUALIFIED and not _has_negative_points(state, rules):
        return None  # positive engagement only falls: no promotion without new events
    t0 = settle_time(state)
    if t0 is None:
        return None
    stages = rules.spec.stages
    refresh_profile_cache(state, rules)
    fit = sum(state.fit_points.values())
    if view is not None:
        e0 = engagement_settled(state, rules, t0)
    else:
        e0, _ = engagement_of(state, rules, t0, shared=True)
    half_life = rules.half_life_seconds
    if state.stage in QUALIFIED:
        recycle = stages.recycle
        falls = [
            crossing_time(e0, t0, recycle.below_total - fit, half_life, "below"),
            crossing_time(e0, t0, recycle.below_engagement, half_life, "below"),
        ]
        due = [t for t in falls if t is not None]
        if not due:
            return None
        crossing = min(due)
        t = max(crossing, (state.stage_since or t0) + recycle.grace_days * DAY)
        if t == crossing:
            return t  # at the crossing itself the score sits exactly on the line
        # The grace period pushed it later: is the lead still below a line then?
        # (Only net-negative engagement rises back; positive engagement only falls.)
        engagement_then = e0 * decay(t - t0, half_life)  # t >= t0: one exponential
        still_low = (
            fit + engagement_then <= recycle.below_total
            or engagement_then <= recycle.below_engagement
        )
        return t if still_low else None
    if e0 >= 0:
        return None  # positive engagement only falls: no promotion without new events
    times = [
        crossing_time(e0, t0, line.min_total - fit, half_life, "above")
        for line in (stages.mql, stages.sql)
        if fit >= line.min_fit and line.min_engagement <= 0
    ]
    due = [t for t in times if t is not None]
    return min(due) if due else None


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
