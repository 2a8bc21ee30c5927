"""The scoring engine: (state, event, rules) -> (new state, transitions).

Pure: no I/O, no clock. The caller's state is never changed (unless it asks,
``apply_event(..., in_place=True)``); a new one is returned. Four entry points::

    outcome = apply_event(state, event, rules)      # an inbound event
    outcome = advance(state, rules, now)            # the decay sweep's "now"
    lead, tombstone = merge_anonymous(lead, anon, rules)   # identify
    outcome = switch_rules(state, rules, at)        # rules that came into force at ``at``

``advance`` is what a timer calls to demote leads that went cold without
doing anything, and to publish SLA breaches of leads sales has not picked
up. A demotion carries the event time at which the score crossed
the recycle line (computed exactly), not the time the sweep ran, so the same
events give the same transitions whenever and however often the sweep runs.
``apply_event`` runs the same step first, up to the event's time.

``switch_rules`` is what a rules change (a reload, ``simulate --switch-rules``) calls
for every lead, so a lead the new lines promote is promoted at the switch, not when
it next does something (which may be never). It re-evaluates; it does not recount:
points are kept per rule that matched when an event was counted, so a rule the old
file did not have counted nothing before the switch (a challenger or ``simulate``
replaying the past events with the new file is how to apply it to the past).

The parts, by concept: ``counting`` (an event into the state), ``signals``,
``buckets`` (windows, caps, folding old history), ``view`` (the scores at a
time), ``decay``, ``stages`` (target, move, sales feedback), ``sweep`` (decay
driven changes), ``identity`` (merging an anonymous visitor), ``outputs``
(transitions, score updates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.events import InboundEvent, InputEvent, SalesFeedback
from schemas.transitions import SlaBreach, StageTransition
from stream_app.scoring.counting import count_event
from stream_app.scoring.identity import merge_anonymous
from stream_app.scoring.outputs import score_update
from stream_app.scoring.rules import Rules
from stream_app.scoring.stages import evaluate, sales_feedback
from stream_app.scoring.state import ANONYMOUS_PREFIX, LeadState, anonymous_key, dt, new_state, ts
from stream_app.scoring.sweep import advance_to, next_change_at, next_due_at
from stream_app.scoring.view import ScoreView, refresh_profile_cache, view_of

__all__ = [
    "Outcome",
    "Status",
    "advance",
    "apply_event",
    "dt",
    "merge_anonymous",
    "next_change_at",
    "next_due_at",
    "score_update",
    "state_key",
    "switch_rules",
    "ts",
]

#: The triggering type of a transition a rules switch made (it has no triggering event).
RULES_SWITCH = "rules_switch"

Status = Literal["counted", "duplicate", "late"]


@dataclass(frozen=True, slots=True)
class Outcome:
    state: LeadState
    transitions: tuple[StageTransition, ...]
    status: Status
    view: ScoreView | None = None  # the lead's scores after a counted event
    breaches: tuple[SlaBreach, ...] = ()  # SLA deadlines passed, in event-time order


def state_key(event: InputEvent) -> str:
    """The key an event is scored under (an erase request: the key it names) when no
    identity link is known."""
    if event.lead_id is not None:
        return event.lead_id
    assert event.anonymous_id is not None  # the schema guarantees one of the two
    return anonymous_key(event.anonymous_id)


def advance(state: LeadState, rules: Rules, now: float) -> Outcome:
    """Apply every time-driven change due at or before ``now`` (the sweep): decay, SLA."""
    fresh = state.scored_with == rules.stamp
    if fresh and (state.due_at is None or state.due_at > now):
        return Outcome(state, (), "counted")
    new = state.copy()
    moved, breaches = advance_to(new, rules, now)
    new.due_at = next_due_at(new, rules)
    if moved or breaches:
        new.version += 1
    return Outcome(new, tuple(moved), "counted", breaches=tuple(breaches))


def apply_event(
    state: LeadState | None,
    event: InboundEvent,
    rules: Rules,
    *,
    key: str | None = None,
    in_place: bool = False,
) -> Outcome:
    """Score one event. ``key`` overrides the state key (identity resolution).

    The caller's state is not changed unless ``in_place`` is true: then it is
    changed and returned as the outcome's state, which saves copying it, for a
    caller that replaces its state with the outcome's anyway (``Replay``).
    """
    t = ts(event.occurred_at)
    fresh = state is None
    if state is None:
        key = key or state_key(event)
        state = new_state(key, None if key.startswith(ANONYMOUS_PREFIX) else key)
    if event.event_id in state.seen or (state.seen_floor is not None and t <= state.seen_floor):
        return Outcome(state, (), "duplicate")
    if state.newest_at is not None and t < state.newest_at - rules.horizon_seconds:
        return Outcome(state, (), "late")
    new = state if fresh or in_place else state.copy()
    moved, breaches = advance_to(new, rules, t)
    count_event(new, event, t, rules)
    now = new.newest_at
    assert now is not None
    if new.lead_id is None:
        # An anonymous visitor has no stage to move, no due time and no score update:
        # its scores are computed when it joins a lead. Only the profile's cache is kept fresh.
        refresh_profile_cache(new, rules)
        new.due_at = None
        new.version += 1
        return Outcome(new, tuple(moved), "counted", None, tuple(breaches))
    view = view_of(new, rules, now)
    if isinstance(event, SalesFeedback):
        moved += sales_feedback(new, event, rules, now, view)
        if moved:
            view = view_of(new, rules, now)  # a sales recycle resets engagement
    else:
        moved += evaluate(new, rules, now, event, view)
    new.due_at = next_due_at(new, rules, view)
    new.version += 1
    return Outcome(new, tuple(moved), "counted", view, tuple(breaches))


def switch_rules(state: LeadState, rules: Rules, at: float) -> Outcome:
    """Re-evaluate a lead against ``rules``, in force from event time ``at`` on.

    What the lead's next event would do first, done at the switch: the time-driven
    changes due by then (decay, SLA), then its stage against the new lines. Its
    transitions carry the new stamp, the event time ``at`` (the lead's newest event
    if that is later: a lead's time never goes back) and ``triggering_event_type``
    ``rules_switch``. An anonymous visitor has no stage; a state that nothing
    changed is returned as it is (the caller need not write it).
    """
    if state.lead_id is None:
        return Outcome(state, (), "counted")
    when = at if state.newest_at is None or at >= state.newest_at else state.newest_at
    new = state.copy()
    moved, breaches = advance_to(new, rules, when)
    view = view_of(new, rules, when)
    moved += evaluate(new, rules, when, None, view, RULES_SWITCH)
    new.due_at = next_due_at(new, rules, view)
    if not moved and not breaches and new.due_at == state.due_at:
        return Outcome(state, (), "counted")
    if moved or breaches:
        new.version += 1
    return Outcome(new, tuple(moved), "counted", view, tuple(breaches))
