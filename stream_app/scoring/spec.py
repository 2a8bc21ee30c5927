"""The rules file's model: what each key means, its bounds, and its checks.

Marketing ops own this file; they revise it quarterly and test a change with
``python -m stream_app simulate`` before it goes live. Every number a
practitioner would tune is here, none is in code. ``rules.parse_rules``
validates a file's text against ``RulesSpec`` and compiles it for the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.events import EVENT_TYPES, FormKind, ProductAction, Profile, SalesOutcome
from schemas.transitions import SlaStage, Stage
from stream_app.scoring.matching import check_matcher

#: Fields a fit or disqualify rule may test: the profile's, plus derived ones.
PROFILE_FIELDS = frozenset(Profile.model_fields) | {"email_domain"}
#: Profile traits a form answer may set: the lead's own BANT answers. Who the lead is
#: (title, seniority, company, size, revenue, country, account, e-mail) stays with the
#: CRM and identify calls: a free-text form field must not override those facts.
FORM_TRAITS = ("budget", "authority", "need", "timeline")
#: Fields of the event envelope that every event has.
COMMON_EVENT_FIELDS = frozenset(
    {"type", "source", "campaign", "utm_source", "utm_medium", "utm_campaign"}
)


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def event_types_of(when: Mapping[str, Any]) -> list[str]:
    raw = when.get("type")
    if raw is None:
        raise ValueError("an engagement condition must name the event 'type' it applies to")
    types = raw if isinstance(raw, list) else [raw]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type(s) {unknown}; known: {sorted(EVENT_TYPES)}")
    return [str(t) for t in types]


def _check_event_condition(when: dict[str, Any]) -> dict[str, Any]:
    types = event_types_of(when)
    for name, spec in when.items():
        check_matcher(spec)
        if name in COMMON_EVENT_FIELDS:
            continue
        for type_name in types:
            fields = set(EVENT_TYPES[type_name].model_fields) | COMMON_EVENT_FIELDS
            if name not in fields:
                raise ValueError(
                    f"'{name}' is not a field of {type_name}; fields: {', '.join(sorted(fields))}"
                )
    return when


def _check_profile_condition(when: dict[str, Any]) -> dict[str, Any]:
    if not when:
        raise ValueError("a condition needs at least one field")
    for name, spec in when.items():
        if name not in PROFILE_FIELDS:
            raise ValueError(
                f"'{name}' is not a profile field; fields: {', '.join(sorted(PROFILE_FIELDS))}"
            )
        check_matcher(spec)
    return when


class Cap(Spec):
    """At most ``points`` from one rule in any ``per_days`` consecutive days (a rolling window).

    Oldest day first, a day's events earn points until the window of
    ``per_days`` days ending on that day holds ``points``. For a negative
    rule it bounds the points lost: ``points: 15`` is at most -15.
    """

    points: float = Field(gt=0)
    per_days: int = Field(ge=1, le=365)


class EngagementRule(Spec):
    id: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    description: str = ""
    when: dict[str, Any]
    points: float
    cap: Cap | None = None

    _check_when = field_validator("when")(_check_event_condition)

    @model_validator(mode="after")
    def _cap_needs_positive_points(self) -> EngagementRule:
        if self.points == 0:
            raise ValueError("points of 0 make a rule that does nothing; remove it instead")
        return self


class Progression(Spec):
    """Values of ``field`` seen in this order (e.g. top, then middle, then bottom)."""

    field: str
    order: list[str] = Field(min_length=2)


class Signal(Spec):
    """An SQL-checklist signal: ``min_count`` matching events within ``within_days``.

    It adds ``points`` on a day it holds, at most once in any ``within_days``
    consecutive days (then the points decay like any engagement).
    """

    id: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    description: str = ""
    when: dict[str, Any]
    within_days: int = Field(ge=1, le=365)
    min_count: int = Field(1, ge=1, le=50)
    distinct: str | None = Field(None, description="count distinct values of this field")
    sequence: Progression | None = None
    points: float = Field(gt=0)

    _check_when = field_validator("when")(_check_event_condition)

    @model_validator(mode="after")
    def _fields_exist(self) -> Signal:
        types = event_types_of(self.when)
        for name in filter(None, [self.distinct, self.sequence and self.sequence.field]):
            for type_name in types:
                if name not in EVENT_TYPES[type_name].model_fields:
                    raise ValueError(f"'{name}' is not a field of {type_name}")
        return self


class FitRule(Spec):
    id: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    description: str = ""
    when: dict[str, Any]
    points: float

    _check_when = field_validator("when")(_check_profile_condition)


class Disqualifier(Spec):
    id: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    description: str = ""
    when: dict[str, Any]

    _check_when = field_validator("when")(_check_profile_condition)


class FormField(Spec):
    """A form field whose answers set a profile trait (``form_fields`` in the rules file).

    ``values`` maps each accepted answer (compared trimmed and lower-cased) to the
    trait's value; any other answer sets nothing. Only the BANT traits may be set
    (``FORM_TRAITS``), and a value must be of the trait's type (true/false for
    budget, authority and need; a label for timeline), as a CRM update would send it.
    """

    field: str = Field(min_length=1, max_length=300, description="the form's field name")
    trait: str = Field(description="the profile trait its answers set")
    values: dict[str, bool | str] = Field(min_length=1, description="answer -> trait value")

    @field_validator("trait")
    @classmethod
    def _trait_allowed(cls, value: str) -> str:
        if value not in FORM_TRAITS:
            raise ValueError(
                f"a form may set only the BANT traits ({', '.join(FORM_TRAITS)}), not "
                f"'{value}': who the lead is stays with the CRM and identify calls"
            )
        return value

    @model_validator(mode="after")
    def _values_fit_the_trait(self) -> FormField:
        answers = [answer.strip().lower() for answer in self.values]
        if len(set(answers)) != len(answers) or not all(answers):
            raise ValueError("answers must be non-empty and differ when trimmed and lower-cased")
        for answer, value in self.values.items():
            try:
                Profile.model_validate({self.trait: value}, strict=True)
            except ValidationError:
                kind = "a label" if self.trait == "timeline" else "true or false"
                raise ValueError(
                    f"values[{answer!r}]: {value!r} is not a value of {self.trait} ({kind}); "
                    'quote an answer that YAML reads otherwise, e.g. "yes": true'
                ) from None
        return self

    def answers(self) -> dict[str, bool | str]:
        """The accepted answers as they are compared: trimmed and lower-cased."""
        return {answer.strip().lower(): value for answer, value in self.values.items()}


class Grade(Spec):
    grade: str = Field(min_length=1, max_length=8)
    min_fit: float | None = None


class Engagement(Spec):
    half_life_days: float = Field(gt=0, le=3650)
    rules: list[EngagementRule] = Field(min_length=1)


class Fit(Spec):
    rules: list[FitRule] = Field(default_factory=list)
    grades: list[Grade] = Field(min_length=1)

    @model_validator(mode="after")
    def _grades_descend(self) -> Fit:
        bounds = [g.min_fit for g in self.grades]
        if bounds[-1] is not None:
            raise ValueError("the last grade catches everyone else: give it no min_fit")
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last grade may omit min_fit")
        numbers = [b for b in bounds[:-1] if b is not None]
        if numbers != sorted(numbers, reverse=True):
            raise ValueError("grades must be listed from the highest min_fit down")
        return self


class Threshold(Spec):
    """A line a lead crosses: total, fit and engagement must all reach it."""

    min_total: float
    min_fit: float
    min_engagement: float = Field(
        0.0, description="engagement needed too, so fit alone never qualifies a lead"
    )


class HandRaise(Spec):
    forms: list[FormKind] = Field(min_length=1)
    min_fit: float


class Pql(Spec):
    required_actions: list[ProductAction] = Field(min_length=1)
    min_distinct_features: int = Field(0, ge=0, le=100)
    min_fit: float


class Recycle(Spec):
    """A qualified lead is recycled when total or engagement falls below these."""

    below_total: float
    below_engagement: float = Field(0.0, ge=0)
    grace_days: float = Field(ge=0)
    keep_engagement_after_sales_recycle: float = Field(
        0.0, ge=0, le=1, description="share of engagement kept when sales rejects or loses a lead"
    )


class Stages(Spec):
    mql: Threshold
    sql: Threshold
    hand_raise: HandRaise
    pql: Pql | None = None
    recycle: Recycle
    sales_feedback: dict[SalesOutcome, Stage]
    sla_hours: dict[SlaStage, float] = Field(
        default_factory=dict,
        description="the marketing-sales SLA: hours sales has to give feedback on a lead that "
        "entered the stage, else an SLA breach is published",
    )

    @field_validator("sla_hours")
    @classmethod
    def _sla_positive(cls, value: dict[SlaStage, float]) -> dict[SlaStage, float]:
        for stage, hours in value.items():
            if not 0 < hours <= 24 * 365:
                raise ValueError(f"sla_hours.{stage} must be between 0 and a year, got {hours}")
        return value

    @model_validator(mode="after")
    def _lines_in_order(self) -> Stages:
        if not self.mql.min_total < self.sql.min_total:
            raise ValueError("mql.min_total must be below sql.min_total")
        if not self.recycle.below_total < self.mql.min_total:
            raise ValueError(
                "recycle.below_total must be below mql.min_total (the gap is the hysteresis "
                "that stops a lead at the line from flapping)"
            )
        if self.mql.min_engagement and not (
            self.recycle.below_engagement < self.mql.min_engagement
        ):
            raise ValueError("recycle.below_engagement must be below mql.min_engagement")
        missing = {"accepted", "rejected", "opportunity", "won", "lost"} - set(self.sales_feedback)
        if missing:
            raise ValueError(f"sales_feedback needs a stage for {sorted(missing)}")
        return self


class Visits(Spec):
    """How page views without a session id are grouped into visits (web analytics' way)."""

    inactivity_minutes: float = Field(
        30,
        gt=0,
        le=24 * 60,
        description="a view more than this many minutes after the previous one starts a new visit",
    )


class FunnelReview(Spec):
    """When the funnel says the MQL definition needs review (below ~20 % MQL->SQL: domain.md)."""

    min_mql_to_sql: float = Field(0.2, ge=0, le=1, description="the conversion to stay above")
    last_mqls: int = Field(200, ge=1, le=1_000_000, description="judged over the newest N MQLs")
    min_mqls: int = Field(20, ge=1, le=1_000_000, description="judged only with this many MQLs")


class Accounts(Spec):
    top_n: int = Field(3, ge=1, le=100, description="account score = sum of its top-N leads")


class RulesSpec(Spec):
    version: str = Field(min_length=1, max_length=64)
    name: str = ""
    description: str = ""
    horizon_days: int = Field(90, ge=7, le=3650)
    max_tracked_events: int = Field(2000, ge=10, le=100_000)
    engagement: Engagement
    signals: list[Signal] = Field(default_factory=list)
    fit: Fit
    disqualify: list[Disqualifier] = Field(default_factory=list)
    form_fields: list[FormField] = Field(
        default_factory=list, description="form fields whose answers set profile traits (BANT)"
    )
    stages: Stages
    visits: Visits = Visits()
    funnel_review: FunnelReview = FunnelReview()
    accounts: Accounts = Accounts()

    @field_validator("form_fields")
    @classmethod
    def _form_fields_once(cls, value: list[FormField]) -> list[FormField]:
        names = [mapping.field for mapping in value]
        if len(set(names)) != len(names):
            raise ValueError("each form field name may be mapped once")
        return value

    @model_validator(mode="after")
    def _ids_unique(self) -> RulesSpec:
        seen: set[str] = set()
        groups = (self.engagement.rules, self.signals, self.fit.rules, self.disqualify)
        for rule in (r for group in groups for r in group):
            if rule.id in seen:
                raise ValueError(f"rule id '{rule.id}' is used twice; ids must be unique")
            seen.add(rule.id)
        longest_window = max(
            [s.within_days for s in self.signals]
            + [r.cap.per_days for r in self.engagement.rules if r.cap]
            + [1]
        )
        if self.horizon_days < longest_window:
            raise ValueError(
                f"horizon_days ({self.horizon_days}) must cover the longest cap or signal "
                f"window ({longest_window} days)"
            )
        return self
