"""What the engine emits: stage transitions and score updates, and their ids.

Outputs are validated from plain dicts in one call into pydantic-core: half
the cost of ``model_construct`` per nested model, which runs in Python, and
what is sent is checked against its schema.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from schemas.events import InboundEvent
from schemas.transitions import ScoreUpdate, Stage, StageTransition, TransitionReason
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import LeadState, dt
from stream_app.scoring.view import ScoreView, view_of


def _transition_id(state: LeadState, to: Stage, trigger: str) -> str:
    basis = f"{state.key}|{state.transition_seq}|{state.stage}|{to}|{trigger}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _scores(view: ScoreView) -> dict[str, Any]:
    return {
        "fit": round(view.fit, 2),
        "engagement": round(view.engagement, 2),
        "total": round(view.total, 2),
        "grade": view.grade,
    }


def _contributions(view: ScoreView) -> list[dict[str, Any]]:
    return [{"rule": r, "kind": k, "points": round(p, 2)} for r, k, p in view.contributions]


def transition(
    state: LeadState,
    to: Stage,
    reason: TransitionReason,
    detail: str | None,
    now: float,
    view: ScoreView,
    rules: Rules,
    trigger: InboundEvent | None,
) -> StageTransition:
    """The transition of ``state`` (before the move) to ``to``; the state is not changed."""
    assert state.lead_id is not None
    trigger_key = trigger.event_id if trigger is not None else f"decay@{now!r}"
    return StageTransition.model_validate(
        {
            "transition_id": _transition_id(state, to, trigger_key),
            "lead_id": state.lead_id,
            "account_id": state.profile.get("account_id"),
            "from_stage": state.stage,
            "to_stage": to,
            "reason": reason,
            "occurred_at": dt(now),
            "scores": _scores(view),
            "contributions": _contributions(view),
            "triggering_event_id": trigger.event_id if trigger is not None else None,
            "triggering_event_type": trigger.type if trigger is not None else None,
            "detail": detail,
            "rules_version": rules.stamp,
            "sequence": state.transition_seq + 1,
        }
    )


def score_update(
    state: LeadState,
    rules: Rules,
    now: float | None = None,
    view: ScoreView | None = None,
    event_id: str | None = None,
) -> ScoreUpdate:
    """The projection record for a lead, scored at ``now`` (default: its newest event)."""
    assert state.lead_id is not None
    if view is None:
        view = view_of(state, rules, now if now is not None else (state.newest_at or 0.0))

    def opt(t: float | None) -> datetime | None:
        return dt(t) if t is not None else None

    return ScoreUpdate.model_validate(
        {
            "lead_id": state.lead_id,
            "account_id": state.profile.get("account_id"),
            "version": max(1, state.version),
            "stage": state.stage,
            "scores": _scores(view),
            "contributions": _contributions(view),
            "last_activity_at": opt(state.newest_at),
            "first_touch_at": opt(state.first_touch_at),
            "mql_at": opt(state.mql_at),
            "sql_at": opt(state.sql_at),
            "source": state.source,
            "campaign": state.campaign,
            "rules_version": rules.stamp,
            "event_id": event_id,
        }
    )
