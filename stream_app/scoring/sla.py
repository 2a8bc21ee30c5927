"""The marketing-sales SLA: how long a lead may wait in a stage for sales feedback.

``stages.sla_hours`` gives, per stage (e.g. SQL 4 h, MQL 48 h), the hours sales
has to give feedback (accepted, rejected...) on a lead from the event time of
its transition into the stage. A lead still in that stage with no feedback
since then breaches the SLA at ``stage_since + hours``: ``sweep.advance_to``
publishes one breach per stage entry, at that event time.
"""

from __future__ import annotations

from typing import Literal

from stream_app.scoring.rules import Rules
from stream_app.scoring.state import LeadState

SlaStatus = Literal["open", "breached"]


def sla_clock(state: LeadState, rules: Rules) -> float | None:
    """The pick-up deadline of a lead waiting for sales in an SLA stage, met or not."""
    hours = rules.spec.stages.sla_hours.get(state.stage)  # type: ignore[arg-type]
    since = state.stage_since
    if hours is None or since is None or state.lead_id is None:
        return None
    if state.feedback_at is not None and state.feedback_at >= since:
        return None  # sales gave feedback on it in this stage: picked up
    deadline: float = since + hours * 3600.0
    return deadline


def sla_deadline(state: LeadState, rules: Rules) -> float | None:
    """When the lead breaches its stage's SLA, if it is waiting and has not breached yet."""
    return None if state.sla_breached else sla_clock(state, rules)


def sla_status(state: LeadState, rules: Rules) -> tuple[SlaStatus | None, float | None]:
    """Whether the lead waits for sales within the SLA ("open") or past it, and the deadline."""
    deadline = sla_clock(state, rules)
    if deadline is None:
        return None, None
    return ("breached" if state.sla_breached else "open"), deadline
