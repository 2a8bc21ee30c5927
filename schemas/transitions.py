"""Outbound events: what sales bots, alerting consumers and projections read.

``stage_transition`` is published on ``lead_stage_transitions`` (keyed by lead
id) the moment a lead changes stage. Its ``transition_id`` is deterministic:
the same events through the same rules always give the same id, so a consumer
that sees one twice (after a worker crash, say) drops the second. A lead that
jumps from below MQL straight to PQL or SQL has ``passed == ["mql"]``: MQLs
are the transitions with ``to_stage == "mql" or "mql" in passed``.

``sla_breach`` is published on ``lead_sla_breaches`` (keyed by lead id) when a
lead waits in a stage longer than the rules' SLA allows without sales feedback.

``score_update`` is published on ``lead_score_updates`` after every counted
event; ``version`` grows by one per applied change of the lead, so a
projection keeps the highest and ignores stale or repeated updates.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import EventTime, Id, Label, Model

Stage = Literal[
    "anonymous",
    "lead",
    "mql",
    "pql",
    "sql",
    "sales_accepted",
    "opportunity",
    "customer",
    "recycled",
    "disqualified",
]
STAGES: tuple[Stage, ...] = Stage.__args__  # type: ignore[attr-defined]

TransitionReason = Literal[
    "score_threshold",  # total and fit crossed the MQL or SQL line
    "hand_raise",  # demo / trial / contact-sales form by an MQL-fit lead, score over or not
    "pql_activation",  # product-usage milestones met
    "decay",  # engagement decayed below the recycle level (the sweep; no triggering event)
    "score_drop",  # an event took the score below the recycle level: negative points
    # (spam report, unsubscribe, bounce) or a profile change that lowered fit
    "disqualified",  # a hard exclusion matched (competitor, student, geography)
    "requalified",  # the exclusion no longer matches
    "sales_feedback",  # sales accepted, rejected, opened, won or lost
]


class Contribution(Model):
    """One rule's share of a score, in points, at the time of the transition."""

    rule: Label
    kind: Literal["fit", "engagement", "signal"]
    points: float


class Scores(Model):
    fit: float
    engagement: float
    total: float
    grade: Label


class StageTransition(Model):
    type: Literal["stage_transition"] = "stage_transition"
    transition_id: Id
    lead_id: Id
    account_id: Id | None = None
    from_stage: Stage
    to_stage: Stage
    passed: list[Stage] = Field(
        default_factory=list,
        max_length=4,
        description="stages reached on the way in this same change: ['mql'] when a lead "
        "jumps straight to PQL or SQL. Count MQLs as to_stage == 'mql' or 'mql' in passed",
    )
    reason: TransitionReason
    occurred_at: EventTime = Field(description="event time of the change (not processing time)")
    scores: Scores
    contributions: list[Contribution]
    triggering_event_id: Id | None = Field(
        None, description="the event that caused it; null for a decay demotion or a rules switch"
    )
    triggering_event_type: Label | None = Field(
        None,
        description="its type; rules_switch when a rules change (a reload) made the transition",
    )
    detail: Label | None = Field(
        None,
        description="e.g. the rule that disqualified, the sales outcome, the hand-raise form "
        "(and the score when it is over the SQL line too)",
    )
    rules_version: Label
    sequence: int = Field(ge=1, description="this lead's n-th transition")


SlaStage = Literal["mql", "pql", "sql"]


class SlaBreach(Model):
    """A lead waited longer than the marketing-sales SLA allows without any sales feedback.

    Published on ``lead_sla_breaches`` (keyed by lead id) once per stage entry,
    at event time ``entered_at + allowed_hours``, by the same timer as decay
    demotions; ``breach_id`` is deterministic, so a consumer drops a duplicate.
    """

    type: Literal["sla_breach"] = "sla_breach"
    breach_id: Id
    lead_id: Id
    account_id: Id | None = None
    stage: SlaStage = Field(description="the stage the lead waited in for sales to pick it up")
    entered_at: EventTime = Field(description="event time of the transition into the stage")
    allowed_hours: float = Field(gt=0)
    occurred_at: EventTime = Field(description="entered_at + allowed_hours: the deadline missed")
    transition_sequence: int = Field(ge=1, description="sequence of the transition into the stage")
    scores: Scores = Field(description="the lead's scores at the deadline")
    rules_version: Label


class ScoreUpdate(Model):
    type: Literal["score_update"] = "score_update"
    lead_id: Id
    account_id: Id | None = None
    version: int = Field(ge=1)
    stage: Stage
    scores: Scores
    contributions: list[Contribution]
    last_activity_at: EventTime | None = None
    first_touch_at: EventTime | None = None
    mql_at: EventTime | None = None
    sql_at: EventTime | None = None
    source: Label | None = None
    campaign: Label | None = None
    rules_version: Label
    sla: Literal["open", "breached"] | None = Field(
        None,
        description="waiting for sales to pick the lead up: within the SLA (open) or past it",
    )
    sla_due_at: EventTime | None = Field(None, description="the pick-up deadline, while waiting")
    next_change_at: EventTime | None = Field(
        None,
        description=(
            "when decay alone changes the lead's stage if nothing else happens: a qualified "
            "lead's demotion (the recycle line crossed, after its grace period), or a "
            "promotion as negative points fade; the time the worker's own timer acts on"
        ),
    )
    event_id: Id | None = Field(
        None, description="the event this version applied (also a redelivered one); none for decay"
    )
