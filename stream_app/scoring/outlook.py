"""When decay alone changes a lead's stage: the outlook of its current score.

Engagement decays exponentially from the lead's settle time; the stage
changes when the total or the engagement crosses a line (a demotion past the
recycle line and its grace period, or, for net-negative engagement, a
promotion as the negative points fade). ``sweep`` turns that time into a
demotion; ``outputs`` tells it in each score update (``next_change_at``) so a
dashboard draws the same time the worker's timer acts on.
"""

from __future__ import annotations

from stream_app.scoring.decay import crossing_time, decay
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import DAY, QUALIFIED, SALES_OWNED, LeadState
from stream_app.scoring.view import (
    ScoreView,
    engagement_of,
    engagement_settled,
    refresh_profile_cache,
    settle_time,
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
