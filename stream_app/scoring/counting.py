"""Counting one event into a lead's state: de-duplication, profile, buckets, signals.

Engagement is kept as event *counts* per (rule, day) bucket; a day's count
is what a rule earns that day before decay and caps (``view``). Old buckets
fold away (``buckets.fold_old_history``) whenever the lead's newest day moves.
"""

from __future__ import annotations

from typing import Any

from schemas.events import FormSubmission, Identify, InboundEvent, ProductUsage, ProfileUpdate
from stream_app.scoring.buckets import fold_old_history
from stream_app.scoring.rules import Rules
from stream_app.scoring.signals import record_signal
from stream_app.scoring.state import DAY, LeadState

MAX_FEATURES = 100
_SAME_ANSWER = (str, int)
EVICT_FRACTION = 0.1


def _getter(event: InboundEvent) -> Any:
    """The rules' field access for ``event``: its fields, and ``utm_<name>`` for its UTM's.

    Conditions only name fields of the event (checked on load), all of which
    are in the model's ``__dict__``: one dict lookup per test, in C.
    """
    utm = event.utm
    if utm is None:
        return event.__dict__.get
    fields = dict(event.__dict__)
    for name, value in utm.__dict__.items():
        fields["utm_" + name] = value
    return fields.get


def _form_answers(event: FormSubmission, rules: Rules) -> dict[str, Any]:
    """The profile traits a form's answers set, as the rules file's ``form_fields`` map them.

    A BANT answer stated on a form counts as the same answer from the CRM does; the
    latest answer by event time wins, whichever way it came. An answer the mapping
    does not list sets nothing (a typo must not read as "no budget").
    """
    mapped = rules.form_traits
    found: dict[str, Any] = {}
    if not mapped:
        return found
    for name, answer in event.fields.items():
        entry = mapped.get(name)
        if entry is not None:
            value = entry[1].get(answer.strip().lower())
            if value is not None:
                found[entry[0]] = value
    return found


def _profile_fields(event: InboundEvent, rules: Rules) -> dict[str, Any]:
    if isinstance(event, FormSubmission):
        return _form_answers(event, rules) if event.fields else {}
    if isinstance(event, ProfileUpdate):
        source: Any = event
    elif isinstance(event, Identify) and event.traits is not None:
        source = event.traits
    else:
        return {}
    fields = {
        name: getattr(source, name)
        for name in (
            "job_title",
            "seniority",
            "department",
            "industry",
            "company_name",
            "account_id",
            "company_size",
            "annual_revenue",
            "country",
            "budget",
            "authority",
            "need",
            "timeline",
        )
        if getattr(source, name) is not None
    }
    if source.email is not None:
        # Only the domain is kept: fit and exclusions need no more, and it keeps
        # addresses out of state, changelogs and logs.
        fields["email_domain"] = source.email.rsplit("@", 1)[1].lower()
    return fields


def _remember(state: LeadState, event_id: str, t: float, rules: Rules) -> None:
    state.seen[event_id] = t
    limit = rules.spec.max_tracked_events
    if len(state.seen) > limit:
        ordered = sorted(state.seen.items(), key=lambda kv: (kv[1], kv[0]))
        drop = ordered[: max(1, int(limit * EVICT_FRACTION))]
        for eid, _ in drop:
            del state.seen[eid]
        state.seen_floor = max(drop[-1][1], state.seen_floor or drop[-1][1])


def note_hand_raise(state: LeadState, t: float, form: str | None) -> None:
    """Keep the latest hand-raise and its form kind (the greatest kind on a tie: any order)."""
    latest = state.hand_raised_at
    later_form = (form or "") > (state.hand_raise_form or "")
    if latest is None or t > latest or (t == latest and later_form):
        state.hand_raised_at = t
        state.hand_raise_form = form


def note_product_use(state: LeadState, t: float) -> None:
    """Keep the newest product-usage time: after a recycle, only use after it makes a PQL."""
    if state.product_used_at is None or t > state.product_used_at:
        state.product_used_at = t


def count_event(state: LeadState, event: InboundEvent, t: float, rules: Rules) -> None:
    _remember(state, event.event_id, t, rules)
    previous_newest = state.newest_at
    state.newest_at = t if previous_newest is None else max(previous_newest, t)
    if state.first_touch_at is None or t < state.first_touch_at:
        state.first_touch_at = t
        utm = event.utm
        state.source = event.source or (utm.source if utm else None) or state.source
        state.campaign = event.campaign or (utm.campaign if utm else None) or state.campaign

    for name, value in _profile_fields(event, rules).items():
        if t >= state.profile_at.get(name, float("-inf")):
            old = state.profile.get(name)
            state.profile[name] = value
            state.profile_at[name] = t
            # Fit and exclusion must be recomputed, unless the value is the one held (an
            # identify repeats the traits): the same str or int gives every matcher the
            # same answer (other types may be equal yet differ to one: 1.0, True, -0.0).
            if not (old.__class__ is value.__class__ in _SAME_ANSWER and old == value):
                state.scored_with = None

    if isinstance(event, ProductUsage):
        note_product_use(state, t)
        if event.action not in state.product_actions:
            state.product_actions.append(event.action)
        if event.feature and event.feature not in state.features:
            state.features.append(event.feature)
            del state.features[:-MAX_FEATURES]
    if isinstance(event, FormSubmission) and event.form_kind in rules.spec.stages.hand_raise.forms:
        note_hand_raise(state, t, event.form_kind)

    get = _getter(event)
    day = int(t // DAY)
    for rule in rules.index[event.type].matching(get):
        if rule.kind == "signal":
            record_signal(state, rule, event, t, rules.visit_gap_seconds)
        else:
            days = state.buckets.setdefault(rule.id, {})
            days[day] = days.get(day, 0) + 1

    if previous_newest is None or int(state.newest_at // DAY) != int(previous_newest // DAY):
        fold_old_history(state, rules)
