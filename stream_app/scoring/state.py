"""Per-lead state: everything the engine needs to score a lead, and no more.

State is bounded whatever a lead does: engagement is kept as event *counts*
per (rule, day) bucket within ``horizon_days`` of the lead's newest event;
older buckets fold into one decayed number per rule. Event ids kept for
de-duplication are capped at ``max_tracked_events``; when ids are evicted the
"floor" rises, and an event at or below it is treated as already seen, so a
duplicate can never count twice, even a very old one.

Times are float seconds since the epoch (event time), converted once at the
boundary. ``to_json``/``from_json`` are the state's JSON (the offline replay's
round trips, the ``absorb`` message); the records table stores the compact
positional layout of ``stream_app.codec.encode_record``, so a new field is
appended after ``due_at``, never inserted (``codec.STATE_FIELDS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from schemas.transitions import Stage

DAY = 86400.0

#: Stages sales owns: scoring never moves a lead out of them, only feedback does.
SALES_OWNED: frozenset[Stage] = frozenset({"sales_accepted", "opportunity", "customer"})
#: Qualified stages a lead can be recycled from when its score decays.
QUALIFIED: frozenset[Stage] = frozenset({"mql", "pql", "sql"})
#: Order of promotion; a lead only ever moves up this ladder on score.
RANK: dict[Stage, int] = {"lead": 0, "recycled": 0, "mql": 1, "pql": 2, "sql": 3}


def passed_on_the_way(from_stage: Stage, to: Stage) -> list[Stage]:
    """The MQL a lead reaches in the same step when it jumps from below MQL to a PQL or an SQL.

    MQL volume is the first figure marketing reports: a lead that goes straight
    to SQL (a demo request) or PQL reached MQL too, as the funnel's ``mql_at``
    counts it, so its transition says so (``StageTransition.passed``). It is a
    statement about the ladder (a PQL or an SQL is beyond MQL), not about the
    MQL line: a PQL by activation may be under it.
    """
    if RANK.get(from_stage, 0) < RANK["mql"] < RANK.get(to, 0):
        return ["mql"]
    return []


@dataclass(slots=True)
class LeadState:
    key: str  # the lead id, or "anon:<anonymous id>" for an anonymous visitor
    lead_id: str | None
    stage: Stage
    stage_since: float | None = None
    version: int = 0  # grows by one per counted change (score_update.version)
    transition_seq: int = 0
    # who the lead is; the e-mail address itself is not kept, only its domain
    profile: dict[str, Any] = field(default_factory=dict)
    profile_at: dict[str, float] = field(default_factory=dict)  # field -> event time set
    # what the lead did: rule id -> day number -> count of matching events
    buckets: dict[str, dict[int, int]] = field(default_factory=dict)
    # folded history: rule id -> [decayed effective count at archive_ref, undecayed]
    archived: dict[str, list[float]] = field(default_factory=dict)
    archive_ref: float | None = None
    # signal id -> sorted [event time, value] of matching events (for windows)
    signal_log: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    product_actions: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    # de-duplication
    seen: dict[str, float] = field(default_factory=dict)  # event id -> event time
    seen_floor: float | None = None
    # milestones, attribution
    newest_at: float | None = None
    first_touch_at: float | None = None
    mql_at: float | None = None
    sql_at: float | None = None
    hand_raised_at: float | None = None
    recycled_at: float | None = None
    source: str | None = None
    campaign: str | None = None
    # identity
    merged_anonymous: list[str] = field(default_factory=list)
    merged_into: str | None = None
    # derived, cached: recomputed when the profile or the rules version changes
    scored_with: str | None = None  # rules stamp the caches below were computed with
    fit_points: dict[str, float] = field(default_factory=dict)  # fit rule id -> points
    excluded_by: str | None = None  # disqualifier id
    due_at: float | None = None  # event time at which decay alone changes the stage
    hand_raise_form: str | None = None  # the form kind of the latest hand-raise
    # folded days still inside a cap window of kept days: rule id -> day -> effective count
    cap_carry: dict[str, dict[int, float]] = field(default_factory=dict)
    feedback_at: float | None = None  # newest sales feedback (the SLA's pick-up)
    sla_breached: bool = False  # an SLA breach was published for the current stage entry
    product_used_at: float | None = None  # newest product-usage event (a PQL after a recycle)

    def copy(self) -> LeadState:
        """A copy whose containers can be changed without touching this one."""
        return LeadState(
            key=self.key,
            lead_id=self.lead_id,
            stage=self.stage,
            stage_since=self.stage_since,
            version=self.version,
            transition_seq=self.transition_seq,
            profile=dict(self.profile),
            profile_at=dict(self.profile_at),
            buckets={rule: dict(days) for rule, days in self.buckets.items()},
            archived={rule: list(v) for rule, v in self.archived.items()},
            archive_ref=self.archive_ref,
            cap_carry={rule: dict(days) for rule, days in self.cap_carry.items()},
            signal_log={sig: list(log) for sig, log in self.signal_log.items()},
            product_actions=list(self.product_actions),
            features=list(self.features),
            seen=dict(self.seen),
            seen_floor=self.seen_floor,
            newest_at=self.newest_at,
            first_touch_at=self.first_touch_at,
            mql_at=self.mql_at,
            sql_at=self.sql_at,
            hand_raised_at=self.hand_raised_at,
            hand_raise_form=self.hand_raise_form,
            recycled_at=self.recycled_at,
            feedback_at=self.feedback_at,
            sla_breached=self.sla_breached,
            product_used_at=self.product_used_at,
            source=self.source,
            campaign=self.campaign,
            merged_anonymous=list(self.merged_anonymous),
            merged_into=self.merged_into,
            scored_with=self.scored_with,
            fit_points=self.fit_points,  # replaced, never changed in place
            excluded_by=self.excluded_by,
            due_at=self.due_at,
        )

    def to_json(self) -> bytes:
        return _ADAPTER.dump_json(self)

    @staticmethod
    def from_json(data: bytes | str) -> LeadState:
        return _ADAPTER.validate_json(data)


_ADAPTER: TypeAdapter[LeadState] = TypeAdapter(LeadState)


def ts(value: datetime) -> float:
    return value.timestamp()


def dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


#: The state key of an anonymous visitor is this prefix and the anonymous id.
ANONYMOUS_PREFIX = "anon:"


def anonymous_key(anonymous_id: str) -> str:
    return f"{ANONYMOUS_PREFIX}{anonymous_id}"


def new_state(key: str, lead_id: str | None) -> LeadState:
    return LeadState(key=key, lead_id=lead_id, stage="lead" if lead_id else "anonymous")
