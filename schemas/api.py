"""The query API's response bodies: what ``/openapi.json`` describes and every handler builds.

They live beside the message models because they are the same contract seen
over HTTP: a lead *is* its newest ``score_update`` plus its recent
``stage_transition``s, so ``Lead`` extends ``ScoreUpdate`` and a change of a
message changes the API's document with it. Each handler validates its body
through one of these models before it answers (``stream_app/serve/api/app.py``), so
the API cannot return a shape the document does not describe; unknown fields
are refused (``extra="forbid"`` from ``Model``), so drift in the projection is
a 500 in the tests, not a silent change for clients.

Shapes are those ``stream_app/serve/stores/projection.py`` reads from Redis: a
field is ``X | None`` only where the projection really yields null.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import EventTime, Id, Label, Model
from schemas.transitions import ScoreUpdate, Stage, StageTransition


class Error(Model):
    """Every 4xx/5xx body the API itself writes."""

    error: str = Field(description="what is wrong, in one sentence")


class Health(Model):
    status: Literal["ok"]


class Ready(Model):
    status: Literal["ready"]


class Lead(ScoreUpdate):
    """``/leads/{lead_id}``: the lead's newest score update and its last transitions."""

    recent_transitions: list[StageTransition] = Field(
        max_length=20, description="newest first; the projection keeps the last 20"
    )


class LeadSummary(Model):
    """A lead in a leaderboard or an account."""

    lead_id: Id
    total: float = Field(description="the lead's total score (fit + engagement)")
    stage: Stage
    account_id: Id | None = Field(description="null for a lead without an account")


class TopLeads(Model):
    """``/leads``: the hottest leads, highest total first (disqualified leads are never hot)."""

    stage: Stage | None = Field(description="the stage asked for; null for all stages")
    leads: list[LeadSummary] = Field(max_length=500)


class Account(Model):
    """``/accounts/{account_id}``: the account's score and every lead in it."""

    account_id: Id
    score: float = Field(description="sum of the top_n best positive lead totals")
    top_n: int = Field(ge=1, description="the rules' accounts.top_n")
    leads: list[LeadSummary] = Field(description="highest total first")


class AccountScore(Model):
    account_id: Id
    score: float


class TopAccounts(Model):
    """``/accounts``: the hottest accounts, highest score first."""

    accounts: list[AccountScore] = Field(max_length=500)


class StageCounts(Model):
    """How many leads are in each stage now (every stage, zero included)."""

    anonymous: int = Field(ge=0)
    lead: int = Field(ge=0)
    mql: int = Field(ge=0)
    pql: int = Field(ge=0)
    sql: int = Field(ge=0)
    sales_accepted: int = Field(ge=0)
    opportunity: int = Field(ge=0)
    customer: int = Field(ge=0)
    recycled: int = Field(ge=0)
    disqualified: int = Field(ge=0)


class SourceCounts(Model):
    """One first-touch source's (or campaign's) leads, and how many of them ever reached MQL/SQL."""

    leads: int = Field(ge=0)
    reached_mql: int = Field(ge=0)
    reached_sql: int = Field(ge=0)


class SlaCounts(Model):
    open: int = Field(ge=0, description="leads waiting for sales within the SLA")
    breached: int = Field(ge=0, description="leads still waiting past it")


class MqlReview(Model):
    """The newest MQLs' conversion to SQL, judged against the rules' ``funnel_review``."""

    last_mqls: int = Field(ge=1, description="how many of the newest MQLs were judged")
    mql_to_sql_rate: float = Field(ge=0, le=1)
    min_mql_to_sql: float = Field(ge=0, le=1)
    needs_review: bool = Field(description="mql_to_sql_rate < min_mql_to_sql")
    message: str


class Funnel(Model):
    """``/funnel``: counts per stage, conversion, velocity, attribution, SLA, MQL review."""

    leads: int = Field(ge=0)
    stages: StageCounts
    reached_mql: int = Field(ge=0, description="leads that ever reached MQL")
    reached_sql: int = Field(ge=0)
    mql_to_sql_rate: float | None = Field(ge=0, le=1, description="null before the first MQL")
    median_days_to_mql: float | None = Field(description="null before the first MQL")
    median_days_mql_to_sql: float | None = Field(description="null before the first SQL")
    by_source: dict[Label, SourceCounts] = Field(
        description="per first-touch source; '(none)' for leads without one"
    )
    by_campaign: dict[Label, SourceCounts] = Field(description="per campaign; '(none)' likewise")
    sla: SlaCounts
    mql_review: MqlReview | None = Field(
        description="null with fewer MQLs than the rules' funnel_review.min_mqls"
    )


class Funnels(Model):
    """``/funnels``: the champion's funnel and, while a challenger runs, its funnel beside it."""

    champion: Funnel
    challenger: Funnel | None = Field(
        description="null unless the challenger's projection (LEADSTREAM_CHALLENGER) has leads"
    )
    challenger_name: Label


class OutcomeBand(Model):
    """Sales outcomes of the leads handed to sales with a total in one band."""

    band: str = Field(description="e.g. '60-80': the lead's total when it reached MQL/PQL/SQL")
    min_total: int | None = Field(description="the band's lowest total; null for the lowest band")
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    opportunity: int = Field(ge=0)
    won: int = Field(ge=0)
    lost: int = Field(ge=0)
    win_rate: float | None = Field(ge=0, le=1, description="won / (won + lost); null before any")


class Outcomes(Model):
    """``/outcomes``: drift. Outcomes per hand-off score band over the last days of feedback."""

    window_days: int
    until: EventTime | None = Field(description="event time of the newest feedback counted")
    bands: list[OutcomeBand]


class ApiInfo(Model):
    title: str
    version: str
    description: str


class OpenApiDocument(Model):
    """``/openapi.json``: this API's OpenAPI 3.1 document (its parts are OpenAPI's own)."""

    openapi: Literal["3.1.0"]
    info: ApiInfo
    components: dict[str, dict[str, object]]
    security: list[dict[str, list[str]]]
    paths: dict[str, dict[str, object]]


#: Every response body model, in the order the document lists them.
RESPONSE_MODELS: tuple[type[Model], ...] = (
    Lead,
    TopLeads,
    LeadSummary,
    Account,
    TopAccounts,
    AccountScore,
    Funnel,
    Funnels,
    Outcomes,
    OutcomeBand,
    Health,
    Ready,
    OpenApiDocument,
    Error,
)
