"""Stage decisions: where a lead should be, moving it there, and sales feedback.

A lead only moves up the ladder (lead -> MQL -> PQL -> SQL) on its score or
a hand raise, is disqualified while a hard exclusion matches, and is
recycled when a qualified lead's score decays below the recycle line for
longer than the grace period. Sales-owned stages move only on feedback.
"""

from __future__ import annotations

from schemas.events import InboundEvent, SalesFeedback
from schemas.transitions import Stage, StageTransition, TransitionReason
from stream_app.scoring.outputs import transition
from stream_app.scoring.rules import Rules, Threshold
from stream_app.scoring.state import DAY, QUALIFIED, RANK, SALES_OWNED, LeadState
from stream_app.scoring.view import ScoreView, engagement_of, view_of


def _since_recycle(state: LeadState, t: float | None) -> bool:
    """Whether an act at ``t`` (a hand-raise, product use) belongs to the lead's current
    life: after its latest recycle, if any. What it did before the recycle is why it was
    qualified then; it must not qualify the lead again by itself."""
    return t is not None and (state.recycled_at is None or t > state.recycled_at)


def _pql_ok(state: LeadState, fit: float, rules: Rules) -> bool:
    """The activation rule: milestones reached at any time (they do not expire), and, for a
    recycled lead, product use since the recycle (``_since_recycle``)."""
    pql = rules.spec.stages.pql
    return (
        pql is not None
        and fit >= pql.min_fit
        and all(a in state.product_actions for a in pql.required_actions)
        and len(state.features) >= pql.min_distinct_features
        and _since_recycle(state, state.product_used_at)
    )


def _reaches(view: ScoreView, line: Threshold) -> bool:
    return (
        view.total >= line.min_total
        and view.fit >= line.min_fit
        and view.engagement >= line.min_engagement
    )


def _sql_reason(
    state: LeadState, hand: bool, by_score: bool, view: ScoreView, rules: Rules
) -> tuple[TransitionReason, str | None]:
    """Why a lead is an SQL: a hand-raise is announced as one, even when the score is there too.

    "Asked for a demo" is a different conversation from "scored 100 points"
    (docs/domain.md), so the form wins; the detail names the form and says when the
    score alone would have made the SQL as well.
    """
    if not hand:
        return "score_threshold", None
    form = state.hand_raise_form or "hand_raise"
    if by_score:
        line = rules.spec.stages.sql.min_total
        return "hand_raise", f"{form}; score {view.total:.2f} also over the SQL line {line:g}"
    return "hand_raise", form


def target(
    state: LeadState,
    view: ScoreView,
    rules: Rules,
    now: float,
    trigger: InboundEvent | None = None,
) -> tuple[Stage, TransitionReason, str | None] | None:
    """Where the lead should be now, if not where it is.

    A recycle found on an event (``trigger``) is that event's doing: every change
    decay alone makes up to the event's time was made before it was counted
    (``sweep.advance_to``), so a spam report, an unsubscribe or a profile change
    that takes the score under the line is announced as ``score_drop``, not ``decay``.
    """
    if state.lead_id is None or state.stage in SALES_OWNED:
        return None
    stages = rules.spec.stages
    excluded_by = state.excluded_by  # fresh: view_of refreshed it
    if excluded_by is not None:
        return (
            None if state.stage == "disqualified" else ("disqualified", "disqualified", excluded_by)
        )
    base: Stage = "lead" if state.stage == "disqualified" else state.stage
    fit = view.fit
    hand = _since_recycle(state, state.hand_raised_at) and fit >= stages.hand_raise.min_fit
    by_score = _reaches(view, stages.sql)
    ladder: list[tuple[Stage, bool, TransitionReason, str | None]] = [
        ("sql", hand or by_score, *_sql_reason(state, hand, by_score, view, rules)),
        ("pql", _pql_ok(state, fit, rules), "pql_activation", None),
        ("mql", _reaches(view, stages.mql), "score_threshold", None),
    ]
    for stage, ok, reason, detail in ladder:
        if ok and RANK[stage] > RANK[base]:
            return stage, reason, detail
    if state.stage == "disqualified":
        return "lead", "requalified", None
    recycle = stages.recycle
    if base in QUALIFIED and (
        view.total < recycle.below_total or view.engagement < recycle.below_engagement
    ):
        grace_end = (state.stage_since or now) + stages.recycle.grace_days * DAY
        if now >= grace_end:
            return "recycled", "decay" if trigger is None else "score_drop", None
    return None


def move(
    state: LeadState,
    to: Stage,
    reason: TransitionReason,
    detail: str | None,
    now: float,
    view: ScoreView,
    rules: Rules,
    trigger: InboundEvent | None,
    cause: str | None = None,
) -> StageTransition:
    """Move the lead to ``to`` (changing ``state``) and return the transition."""
    moved = transition(state, to, reason, detail, now, view, rules, trigger, cause)
    state.transition_seq += 1
    state.stage = to
    state.stage_since = now
    if RANK.get(to, 0) >= 1 and state.mql_at is None:
        state.mql_at = now
    if to == "sql" and state.sql_at is None:
        state.sql_at = now
    if to == "recycled":
        state.recycled_at = now
    state.sla_breached = False  # a new stage entry: its own SLA clock
    return moved


def evaluate(
    state: LeadState,
    rules: Rules,
    now: float,
    trigger: InboundEvent | None,
    view: ScoreView,
    cause: str | None = None,
) -> list[StageTransition]:
    if state.lead_id is None:
        return []
    found = target(state, view, rules, now, trigger)
    if found is None:
        return []
    to, reason, detail = found
    moved = [move(state, to, reason, detail, now, view, rules, trigger, cause)]
    if reason in ("requalified", "disqualified"):
        # a requalified lead may be an MQL at once
        moved += evaluate(state, rules, now, trigger, view, cause)
    return moved


def sales_feedback(
    state: LeadState, event: SalesFeedback, rules: Rules, now: float, view: ScoreView
) -> list[StageTransition]:
    to = rules.spec.stages.sales_feedback[event.outcome]
    state.feedback_at = max(now, state.feedback_at or now)  # sales picked the lead up
    if to == state.stage:
        return []
    detail = event.outcome if not event.reason else f"{event.outcome}: {event.reason}"[:300]
    if to == "recycled":
        # The transition shows the lead as it is after the change: cold.
        _reset_engagement(state, rules, now)
        view = view_of(state, rules, now)
    return [move(state, to, "sales_feedback", detail, now, view, rules, event)]


def _reset_engagement(state: LeadState, rules: Rules, now: float) -> None:
    """After sales recycles a lead, its old engagement mostly stops counting.

    Otherwise a rejected lead whose score is still high would be an MQL
    again on its next page view. ``recycle.keep_engagement_after_sales_recycle``
    says what share is kept (default none); signals must be earned anew.
    """
    keep = rules.spec.stages.recycle.keep_engagement_after_sales_recycle
    _, decayed = engagement_of(state, rules, now)
    _, raw = engagement_of(state, rules, now, decay=False)
    state.archived = {
        rule_id: [
            keep * points / rules.by_id[rule_id].points,
            keep * raw[rule_id] / rules.by_id[rule_id].points,
        ]
        for rule_id, points in decayed.items()
    }
    state.archive_ref = now
    state.buckets = {}
    state.cap_carry = {}  # caps start afresh
    state.signal_log = {}
