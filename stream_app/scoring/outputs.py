"""What the engine emits: stage transitions, SLA breaches and score updates, and their ids.

Outputs are validated from plain dicts in one call into pydantic-core: half
the cost of ``model_construct`` per nested model, which runs in Python, and
what is sent is checked against its schema. Scores and times repeat across
events, so each distinct one is validated once and the frozen instance reused
(pydantic takes an instance of the field's model as it is); a bounded cache,
so memory stays bounded. Contributions' decayed points rarely repeat: they are
validated in the output's own call.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from math import copysign
from typing import Any

from schemas.events import InboundEvent
from schemas.transitions import (
    Scores,
    ScoreUpdate,
    SlaBreach,
    Stage,
    StageTransition,
    TransitionReason,
)
from stream_app.scoring.outlook import next_change_at
from stream_app.scoring.rules import Rules
from stream_app.scoring.sla import sla_status
from stream_app.scoring.state import LeadState, dt, passed_on_the_way
from stream_app.scoring.view import ScoreView, view_of


def _transition_id(state: LeadState, to: Stage, trigger: str) -> str:
    basis = f"{state.key}|{state.transition_seq}|{state.stage}|{to}|{trigger}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


#: Entries kept per cache of validated parts below; a full cache starts again.
CACHE_LIMIT = 2048
_scores_made: dict[tuple[float | str, ...], Scores] = {}
_times_made: dict[float, datetime] = {}


def _scores(view: ScoreView) -> Scores:
    """The rounded scores, validated once per distinct value (frozen models can be shared).

    Equal floats that differ in bits are only 0.0 and -0.0 (JSON "0.0" and
    "-0.0"), so a key with a zero also carries the zeros' signs.
    """
    fit, engagement, total = round(view.fit, 2), round(view.engagement, 2), round(view.total, 2)
    key: tuple[float | str, ...] = (fit, engagement, total, view.grade)
    if not (fit and engagement and total):
        key += (copysign(1.0, fit), copysign(1.0, engagement), copysign(1.0, total))
    made = _scores_made.get(key)
    if made is None:
        made = Scores.model_validate(
            {"fit": fit, "engagement": engagement, "total": total, "grade": view.grade}
        )
        if len(_scores_made) >= CACHE_LIMIT:
            _scores_made.clear()
        _scores_made[key] = made
    return made


def _contributions(view: ScoreView) -> list[dict[str, object]]:
    """The rounded contributions, as plain dicts the output's one validation call checks.

    Decayed points rarely repeat (a cache of validated parts missed half the time
    and cost more than it saved), so they are validated inside the output's call.
    """
    return [
        {"rule": rule, "kind": kind, "points": round(points, 2)}
        for rule, kind, points in view.contributions
    ]


def _time(t: float) -> datetime:
    made = _times_made.get(t)
    if made is None:
        if len(_times_made) >= CACHE_LIMIT:
            _times_made.clear()
        made = _times_made[t] = dt(t)
    return made


def transition(
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
    """The transition of ``state`` (before the move) to ``to``; the state is not changed.

    Without a triggering event, ``cause`` (e.g. ``rules_switch``) is its triggering type
    and part of its id; none is a time-driven change (decay).
    """
    assert state.lead_id is not None
    trigger_type: str | None
    if trigger is not None:
        trigger_key, trigger_type = trigger.event_id, trigger.type
    else:
        trigger_key, trigger_type = f"{cause or 'decay'}@{now!r}", cause
    return StageTransition.model_validate(
        {
            "transition_id": _transition_id(state, to, trigger_key),
            "lead_id": state.lead_id,
            "account_id": state.profile.get("account_id"),
            "from_stage": state.stage,
            "to_stage": to,
            "passed": passed_on_the_way(state.stage, to),
            "reason": reason,
            "occurred_at": _time(now),
            "scores": _scores(view),
            "contributions": _contributions(view),
            "triggering_event_id": trigger.event_id if trigger is not None else None,
            "triggering_event_type": trigger_type,
            "detail": detail,
            "rules_version": rules.stamp,
            "sequence": state.transition_seq + 1,
        }
    )


def sla_breach(state: LeadState, deadline: float, view: ScoreView, rules: Rules) -> SlaBreach:
    """The breach of the SLA of the stage ``state`` entered at ``stage_since`` (not changed)."""
    assert state.lead_id is not None and state.stage_since is not None
    hours = rules.spec.stages.sla_hours[state.stage]  # type: ignore[index]
    basis = f"{state.key}|sla|{state.transition_seq}|{state.stage}|{state.stage_since!r}"
    return SlaBreach.model_validate(
        {
            "breach_id": hashlib.sha256(basis.encode()).hexdigest()[:32],
            "lead_id": state.lead_id,
            "account_id": state.profile.get("account_id"),
            "stage": state.stage,
            "entered_at": _time(state.stage_since),
            "allowed_hours": hours,
            "occurred_at": _time(deadline),
            "transition_sequence": max(1, state.transition_seq),
            "scores": _scores(view),
            "rules_version": rules.stamp,
        }
    )


#: A score update's event times: kept as floats until the update is validated.
_UPDATE_TIMES = (
    "last_activity_at",
    "first_touch_at",
    "mql_at",
    "sql_at",
    "sla_due_at",
    "next_change_at",
)


class PendingUpdate:
    """A lead's score update as of one event, validated when first read (``get``).

    What the update reads is copied when the event is scored (a few scalars and
    the frozen view), so reading it later, after the state changed, gives the
    same update; a caller that only keeps the newest per lead, or none, skips
    the validation of the others.
    """

    __slots__ = ("_fields", "_made", "_view")

    def __init__(self, fields: dict[str, Any], view: ScoreView) -> None:
        self._fields = fields
        self._view = view
        self._made: ScoreUpdate | None = None

    def get(self) -> ScoreUpdate:
        made = self._made
        if made is None:
            view = self._view
            fields = {
                **self._fields,
                "scores": _scores(view),
                "contributions": _contributions(view),
            }
            for name in _UPDATE_TIMES:
                t = fields[name]
                fields[name] = _time(t) if t is not None else None
            made = self._made = ScoreUpdate.model_validate(fields)
        return made


def _change_at(
    state: LeadState, rules: Rules, deadline: float | None, view: ScoreView
) -> float | None:
    """When decay alone changes the lead's stage (``outlook.next_change_at``).

    ``state.due_at`` is the earlier of that time and the SLA deadline, cached when
    the state was last scored with these rules: when it is fresh and not the
    deadline, it is the answer, so only a lead waiting on an SLA is computed again.
    """
    due = state.due_at
    fresh = state.scored_with == rules.stamp
    if fresh and (deadline is None or (due is not None and due < deadline)):
        return due
    return next_change_at(state, rules, view)


def pending_update(
    state: LeadState,
    rules: Rules,
    now: float | None = None,
    view: ScoreView | None = None,
    event_id: str | None = None,
) -> PendingUpdate:
    """The projection record for a lead, scored at ``now`` (default: its newest event)."""
    assert state.lead_id is not None
    if view is None:
        view = view_of(state, rules, now if now is not None else (state.newest_at or 0.0))
    sla, deadline = sla_status(state, rules)
    fields = {
        "lead_id": state.lead_id,
        "account_id": state.profile.get("account_id"),
        "version": max(1, state.version),
        "stage": state.stage,
        "last_activity_at": state.newest_at,
        "first_touch_at": state.first_touch_at,
        "mql_at": state.mql_at,
        "sql_at": state.sql_at,
        "source": state.source,
        "campaign": state.campaign,
        "rules_version": rules.stamp,
        "sla": sla,
        "sla_due_at": deadline,
        "next_change_at": _change_at(state, rules, deadline, view),
        "event_id": event_id,
    }
    return PendingUpdate(fields, view)


def score_update(
    state: LeadState,
    rules: Rules,
    now: float | None = None,
    view: ScoreView | None = None,
    event_id: str | None = None,
) -> ScoreUpdate:
    """The projection record for a lead, scored at ``now`` (default: its newest event)."""
    return pending_update(state, rules, now, view, event_id).get()
