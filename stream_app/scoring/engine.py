"""The scoring engine: (state, event, rules) -> (new state, transitions).

Pure: no I/O, no clock. The caller's state is never changed; a new one is
returned. Three entry points::

    outcome = apply_event(state, event, rules)      # an inbound event
    outcome = advance(state, rules, now)            # the decay sweep's "now"
    lead, tombstone = merge_anonymous(lead, anon, rules)   # identify

``advance`` is what a timer calls to demote leads that went cold without
doing anything. A demotion carries the event time at which the score crossed
the recycle line (computed exactly), not the time the sweep ran, so the same
events give the same transitions whenever and however often the sweep runs.
``apply_event`` runs the same step first, up to the event's time.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.events import (
    FormSubmission,
    Identify,
    InboundEvent,
    ProductUsage,
    ProfileUpdate,
    SalesFeedback,
)
from schemas.transitions import (
    ScoreUpdate,
    Stage,
    StageTransition,
    TransitionReason,
)
from stream_app.scoring.rules import CompiledRule, Rules, Signal, Threshold
from stream_app.scoring.score import (
    ScoreView,
    crossing_time,
    engagement_of,
    refresh_profile_cache,
    settle_time,
    view_of,
)
from stream_app.scoring.state import (
    DAY,
    QUALIFIED,
    RANK,
    SALES_OWNED,
    LeadState,
    anonymous_key,
    new_state,
)

Status = Literal["counted", "duplicate", "late"]

MAX_SIGNAL_LOG = 200
MAX_FEATURES = 100
MAX_MERGED_IDS = 100
EVICT_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class Outcome:
    state: LeadState
    transitions: tuple[StageTransition, ...]
    status: Status
    view: ScoreView | None = None  # the lead's scores after a counted event


def ts(value: datetime) -> float:
    return value.timestamp()


def dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def state_key(event: InboundEvent) -> str:
    """The key an event is scored under when no identity link is known."""
    if event.lead_id is not None:
        return event.lead_id
    assert event.anonymous_id is not None  # the schema guarantees one of the two
    return anonymous_key(event.anonymous_id)


# --- event field access ------------------------------------------------------------


def _getter(event: InboundEvent) -> Any:
    utm = event.utm

    def get(name: str) -> Any:
        if name.startswith("utm_"):
            return getattr(utm, name[4:], None) if utm is not None else None
        return getattr(event, name, None)

    return get


def _profile_fields(event: InboundEvent) -> dict[str, Any]:
    if isinstance(event, ProfileUpdate):
        source: Any = event
    elif isinstance(event, Identify) and event.traits is not None:
        source = event.traits
    else:
        return {}
    fields = {
        name: getattr(source, name)
        for name in ("job_title", "seniority", "department", "industry", "company_name",
                     "account_id", "company_size", "annual_revenue", "country", "budget",
                     "authority", "need", "timeline")
        if getattr(source, name) is not None
    }  # fmt: skip
    if source.email is not None:
        # Only the domain is kept: fit and exclusions need no more, and it keeps
        # addresses out of state, changelogs and logs.
        fields["email_domain"] = source.email.rsplit("@", 1)[1].lower()
    return fields


# --- counting an event ----------------------------------------------------------------


def _remember(state: LeadState, event_id: str, t: float, rules: Rules) -> None:
    state.seen[event_id] = t
    limit = rules.spec.max_tracked_events
    if len(state.seen) > limit:
        ordered = sorted(state.seen.items(), key=lambda kv: (kv[1], kv[0]))
        drop = ordered[: max(1, int(limit * EVICT_FRACTION))]
        for eid, _ in drop:
            del state.seen[eid]
        state.seen_floor = max(drop[-1][1], state.seen_floor or drop[-1][1])


def _signal_holds(sig: Signal, window: list[tuple[float, str]]) -> bool:
    if sig.sequence is not None:
        wanted = [v.casefold() for v in sig.sequence.order]
        i = 0
        for _, value in window:
            if value.casefold() == wanted[i]:
                i += 1
                if i == len(wanted):
                    return True
        return False
    if sig.distinct is not None:
        return len({value for _, value in window}) >= sig.min_count
    return len(window) >= sig.min_count


def _award_signals(state: LeadState, sig: Signal, since: float) -> None:
    """Mark each day on which a window ending at a logged event >= ``since`` satisfies ``sig``.

    Awards are a set of days, so checking a window twice, or in another
    order, gives the same awards.
    """
    log = state.signal_log.get(sig.id, [])
    within = sig.within_days * DAY
    days = state.buckets.setdefault(sig.id, {})
    start = bisect.bisect_left(log, (since, ""))
    for end in range(start, len(log)):
        t_end = log[end][0]
        if t_end > since + within:
            break
        lo = bisect.bisect_left(log, (t_end - within, ""))
        if _signal_holds(sig, log[lo : end + 1]):
            days[int(t_end // DAY)] = 1


def _record_signal(state: LeadState, rule: CompiledRule, event: InboundEvent, t: float) -> None:
    sig = rule.signal
    assert sig is not None
    field_name = sig.sequence.field if sig.sequence else sig.distinct
    value = getattr(event, field_name) if field_name else None
    log = state.signal_log.setdefault(sig.id, [])
    bisect.insort(log, (t, str(value) if value is not None else event.event_id))
    if len(log) > MAX_SIGNAL_LOG:
        del log[: len(log) - MAX_SIGNAL_LOG]
    _award_signals(state, sig, t)


def _count(state: LeadState, event: InboundEvent, t: float, rules: Rules) -> None:
    _remember(state, event.event_id, t, rules)
    previous_newest = state.newest_at
    state.newest_at = t if previous_newest is None else max(previous_newest, t)
    if state.first_touch_at is None or t < state.first_touch_at:
        state.first_touch_at = t
        utm = event.utm
        state.source = event.source or (utm.source if utm else None) or state.source
        state.campaign = event.campaign or (utm.campaign if utm else None) or state.campaign

    for name, value in _profile_fields(event).items():
        if t >= state.profile_at.get(name, float("-inf")):
            state.profile[name] = value
            state.profile_at[name] = t
            state.scored_with = None  # fit and exclusion must be recomputed

    if isinstance(event, ProductUsage):
        if event.action not in state.product_actions:
            state.product_actions.append(event.action)
        if event.feature and event.feature not in state.features:
            state.features.append(event.feature)
            del state.features[:-MAX_FEATURES]
    if isinstance(event, FormSubmission) and event.form_kind in rules.spec.stages.hand_raise.forms:
        state.hand_raised_at = max(t, state.hand_raised_at or t)

    get = _getter(event)
    day = int(t // DAY)
    for rule in rules.by_event_type[event.type]:
        if not rule.predicate(get):
            continue
        if rule.kind == "signal":
            _record_signal(state, rule, event, t)
        else:
            days = state.buckets.setdefault(rule.id, {})
            days[day] = days.get(day, 0) + 1

    if previous_newest is None or int(state.newest_at // DAY) != int(previous_newest // DAY):
        _fold_old_history(state, rules)


def _fold_old_history(state: LeadState, rules: Rules) -> None:
    """Fold buckets older than the horizon into one decayed number per rule.

    Keeps state bounded; events that old are not counted any more (status
    "late"), so nothing can land in a folded window later.
    """
    assert state.newest_at is not None
    line = state.newest_at - rules.horizon_seconds
    half_life = rules.half_life_seconds
    ref = max(line, state.archive_ref or line)
    if state.archive_ref is not None and ref > state.archive_ref:
        fade = 2.0 ** (-(ref - state.archive_ref) / half_life)
        for values in state.archived.values():
            values[0] *= fade
    for rule_id in list(state.buckets):
        days = state.buckets[rule_id]
        rule = rules.by_id.get(rule_id)
        if rule is None:
            del state.buckets[rule_id]  # the rule left the rules file
            continue
        span = rule.window_days
        if days and (min(days) // span + 1) * span * DAY > line:
            continue  # even the oldest window is within the horizon: nothing to fold
        windows: dict[int, list[int]] = {}
        for d in days:
            windows.setdefault(d // rule.window_days, []).append(d)
        for window, members in windows.items():
            if (window + 1) * rule.window_days * DAY > line:
                continue
            raw = sum(days[d] for d in members)
            factor = 1.0 if rule.cap is None else min(1.0, rule.cap / (rule.points * raw))
            folded = state.archived.setdefault(rule_id, [0.0, 0.0])
            for d in members:
                effective = days.pop(d) * factor
                folded[0] += effective * 2.0 ** (-(ref - (d + 1) * DAY) / half_life)
                folded[1] += effective
        if not days:
            del state.buckets[rule_id]
    state.archive_ref = ref
    for sig in rules.spec.signals:
        log = state.signal_log.get(sig.id)
        if log:
            keep_from = bisect.bisect_left(log, (line - sig.within_days * DAY, ""))
            del log[:keep_from]
    seen = state.seen
    if seen and min(seen.values()) < line:  # the common case, nothing to drop, in C
        for eid in [eid for eid, t in seen.items() if t < line]:
            del seen[eid]


# --- stage decisions ------------------------------------------------------------------


def _pql_ok(state: LeadState, fit: float, rules: Rules) -> bool:
    pql = rules.spec.stages.pql
    return (
        pql is not None
        and fit >= pql.min_fit
        and all(a in state.product_actions for a in pql.required_actions)
        and len(state.features) >= pql.min_distinct_features
    )


def _reaches(view: ScoreView, line: Threshold) -> bool:
    return (
        view.total >= line.min_total
        and view.fit >= line.min_fit
        and view.engagement >= line.min_engagement
    )


def _target(
    state: LeadState, view: ScoreView, rules: Rules, now: float
) -> tuple[Stage, TransitionReason, str | None] | None:
    """Where the lead should be now, if not where it is."""
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
    raised = state.hand_raised_at is not None and (
        state.recycled_at is None or state.hand_raised_at > state.recycled_at
    )
    hand = raised and fit >= stages.hand_raise.min_fit
    by_score = _reaches(view, stages.sql)
    ladder: list[tuple[Stage, bool, TransitionReason]] = [
        ("sql", hand or by_score, "score_threshold" if by_score else "hand_raise"),
        ("pql", _pql_ok(state, fit, rules), "pql_activation"),
        ("mql", _reaches(view, stages.mql), "score_threshold"),
    ]
    for stage, ok, reason in ladder:
        if ok and RANK[stage] > RANK[base]:
            return stage, reason, None
    if state.stage == "disqualified":
        return "lead", "requalified", None
    recycle = stages.recycle
    if base in QUALIFIED and (
        view.total < recycle.below_total or view.engagement < recycle.below_engagement
    ):
        grace_end = (state.stage_since or now) + stages.recycle.grace_days * DAY
        if now >= grace_end:
            return "recycled", "decay", None
    return None


def _transition_id(state: LeadState, to: Stage, trigger: str) -> str:
    basis = f"{state.key}|{state.transition_seq}|{state.stage}|{to}|{trigger}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


# Outputs (transitions, score updates) are validated from plain dicts in one call into
# pydantic-core: half the cost of ``model_construct`` per nested model, which runs in
# Python, and what is sent is checked against its schema.
def _scores(view: ScoreView) -> dict[str, Any]:
    return {
        "fit": round(view.fit, 2),
        "engagement": round(view.engagement, 2),
        "total": round(view.total, 2),
        "grade": view.grade,
    }


def _contributions(view: ScoreView) -> list[dict[str, Any]]:
    return [{"rule": r, "kind": k, "points": round(p, 2)} for r, k, p in view.contributions]


def _move(
    state: LeadState,
    to: Stage,
    reason: TransitionReason,
    detail: str | None,
    now: float,
    view: ScoreView,
    rules: Rules,
    trigger: InboundEvent | None,
) -> StageTransition:
    assert state.lead_id is not None
    trigger_key = trigger.event_id if trigger is not None else f"decay@{now!r}"
    transition = StageTransition.model_validate(
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
    state.transition_seq += 1
    state.stage = to
    state.stage_since = now
    if RANK.get(to, 0) >= 1 and state.mql_at is None:
        state.mql_at = now
    if to == "sql" and state.sql_at is None:
        state.sql_at = now
    if to == "recycled":
        state.recycled_at = now
    return transition


def _evaluate(
    state: LeadState, rules: Rules, now: float, trigger: InboundEvent | None, view: ScoreView
) -> list[StageTransition]:
    if state.lead_id is None:
        return []
    target = _target(state, view, rules, now)
    if target is None:
        return []
    to, reason, detail = target
    moved = [_move(state, to, reason, detail, now, view, rules, trigger)]
    if reason in ("requalified", "disqualified"):
        # a requalified lead may be an MQL at once
        moved += _evaluate(state, rules, now, trigger, view)
    return moved


def _sales_feedback(
    state: LeadState, event: SalesFeedback, rules: Rules, now: float, view: ScoreView
) -> list[StageTransition]:
    to = rules.spec.stages.sales_feedback[event.outcome]
    if to == state.stage:
        return []
    detail = event.outcome if not event.reason else f"{event.outcome}: {event.reason}"[:300]
    moved = _move(state, to, "sales_feedback", detail, now, view, rules, event)
    if to == "recycled":
        _reset_engagement(state, rules, now)
    return [moved]


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
    state.signal_log = {}


# --- time-based changes -------------------------------------------------------------------


def _has_negative_points(state: LeadState, rules: Rules) -> bool:
    for rule_id in (*state.buckets, *state.archived):
        rule = rules.by_id.get(rule_id)
        if rule is not None and rule.points < 0:
            return True
    return False


def next_change_at(state: LeadState, rules: Rules, view: ScoreView | None = None) -> float | None:
    """Event time at which decay alone changes this lead's stage, if it ever does.

    ``view``, if given, must be of the state as it is now (its settled
    engagement saves a pass over the buckets).
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
    if view is not None and view.settle_at == t0 and view.engagement_settled is not None:
        e0 = view.engagement_settled
    else:
        e0, _ = engagement_of(state, rules, t0)
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
        engagement_then = e0 * 2.0 ** (-(t - t0) / half_life)  # t >= t0: one exponential
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


def _advance(state: LeadState, rules: Rules, upto: float) -> list[StageTransition]:
    if state.scored_with == rules.stamp and (state.due_at is None or state.due_at > upto):
        return []  # the cached due time is fresh: nothing is due yet
    moved: list[StageTransition] = []
    for _ in range(4):  # a demotion, then at most a re-promotion; never loops
        due = next_change_at(state, rules)
        if due is None or due > upto:
            break
        view = view_of(state, rules, due)
        if state.stage in QUALIFIED:
            moved.append(_move(state, "recycled", "decay", None, due, view, rules, None))
            continue
        target = _target(state, view, rules, due)
        if target is None:
            break
        moved.append(_move(state, target[0], target[1], target[2], due, view, rules, None))
    return moved


def advance(state: LeadState, rules: Rules, now: float) -> Outcome:
    """Apply every decay-driven change due at or before ``now`` (the sweep)."""
    fresh = state.scored_with == rules.stamp
    if fresh and (state.due_at is None or state.due_at > now):
        return Outcome(state, (), "counted")
    new = state.copy()
    moved = _advance(new, rules, now)
    new.due_at = next_change_at(new, rules)
    if moved:
        new.version += 1
    return Outcome(new, tuple(moved), "counted")


# --- the entry points ------------------------------------------------------------------


def apply_event(
    state: LeadState | None, event: InboundEvent, rules: Rules, *, key: str | None = None
) -> Outcome:
    """Score one event. ``key`` overrides the state key (identity resolution)."""
    t = ts(event.occurred_at)
    if state is None:
        key = key or state_key(event)
        state = new_state(key, None if key.startswith("anon:") else key)
    if event.event_id in state.seen or (state.seen_floor is not None and t <= state.seen_floor):
        return Outcome(state, (), "duplicate")
    if state.newest_at is not None and t < state.newest_at - rules.horizon_seconds:
        return Outcome(state, (), "late")
    new = state.copy()
    moved = _advance(new, rules, t)
    _count(new, event, t, rules)
    now = new.newest_at
    assert now is not None
    view = view_of(new, rules, now)
    if isinstance(event, SalesFeedback):
        moved += _sales_feedback(new, event, rules, now, view)
        if moved:
            view = view_of(new, rules, now)  # a sales recycle resets engagement
    else:
        moved += _evaluate(new, rules, now, event, view)
    new.due_at = next_change_at(new, rules, view)
    new.version += 1
    return Outcome(new, tuple(moved), "counted", view)


def merge_anonymous(lead: LeadState, anon: LeadState, rules: Rules) -> tuple[LeadState, LeadState]:
    """Fold an anonymous visitor's history into a lead, exactly once.

    Returns the new lead state (not yet re-evaluated: the identify event that
    caused the merge is applied next and evaluates) and a tombstone for the
    anonymous key. Merging the same anonymous id again changes nothing.
    """
    anon_id = anon.key.removeprefix("anon:")
    if anon_id in lead.merged_anonymous or anon.merged_into is not None:
        return lead, anon
    new = lead.copy()
    for rule_id, days in anon.buckets.items():
        mine = new.buckets.setdefault(rule_id, {})
        rule = rules.by_id.get(rule_id)
        for day, count in days.items():
            union = rule is not None and rule.kind == "signal"
            mine[day] = max(mine.get(day, 0), count) if union else mine.get(day, 0) + count
    _merge_archives(new, anon, rules)
    for sig_id, log in anon.signal_log.items():
        merged = sorted(set(new.signal_log.get(sig_id, [])) | set(log))
        new.signal_log[sig_id] = merged[-MAX_SIGNAL_LOG:]
    for sig in rules.spec.signals:
        if sig.id in anon.signal_log:
            _award_signals(new, sig, float("-inf"))
    new.seen.update(anon.seen)
    floors = [f for f in (new.seen_floor, anon.seen_floor) if f is not None]
    new.seen_floor = max(floors) if floors else None
    if anon.newest_at is not None:
        new.newest_at = max(new.newest_at or anon.newest_at, anon.newest_at)
    if anon.first_touch_at is not None and (
        new.first_touch_at is None or anon.first_touch_at < new.first_touch_at
    ):
        new.first_touch_at = anon.first_touch_at
        new.source = anon.source or new.source
        new.campaign = anon.campaign or new.campaign
    new.product_actions += [a for a in anon.product_actions if a not in new.product_actions]
    new.features = (new.features + [f for f in anon.features if f not in new.features])[
        -MAX_FEATURES:
    ]
    if anon.hand_raised_at is not None:
        new.hand_raised_at = max(anon.hand_raised_at, new.hand_raised_at or anon.hand_raised_at)
    new.merged_anonymous = [*new.merged_anonymous, anon_id][-MAX_MERGED_IDS:]
    new.version += 1
    if new.newest_at is not None:
        _fold_old_history(new, rules)
    new.due_at = next_change_at(new, rules)
    tombstone = new_state(anon.key, None)
    tombstone.merged_into = lead.lead_id
    return new, tombstone


def _merge_archives(into: LeadState, other: LeadState, rules: Rules) -> None:
    if other.archive_ref is None or not other.archived:
        return
    ref = max(into.archive_ref or other.archive_ref, other.archive_ref)
    half_life = rules.half_life_seconds
    if into.archive_ref is not None and into.archive_ref < ref:
        fade = 2.0 ** (-(ref - into.archive_ref) / half_life)
        for values in into.archived.values():
            values[0] *= fade
    fade_other = 2.0 ** (-(ref - other.archive_ref) / half_life)
    for rule_id, (decayed, raw) in other.archived.items():
        values = into.archived.setdefault(rule_id, [0.0, 0.0])
        values[0] += decayed * fade_other
        values[1] += raw
    into.archive_ref = ref


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
