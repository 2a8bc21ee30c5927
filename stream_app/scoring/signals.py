"""SQL-checklist signals: a log of matching events per signal, and the days it held.

A signal holds on a day when a window of ``within_days`` ending at a logged
event on that day satisfies it (``min_count`` events, ``distinct`` values or
a ``sequence`` in order). Distinct sessions count page views without a
session id as visits: a new visit after ``visits.inactivity_minutes`` without
one, as web analytics does. The days it held are kept as a (signal, day)
bucket of 1, capped like any rule at ``points`` in any ``within_days`` days
(``buckets.capped_counts``): it adds its points at most once in any such
span, and awarding a day twice, or in another order, changes nothing.
"""

from __future__ import annotations

import bisect

from schemas.events import InboundEvent
from stream_app.scoring.rules import CompiledRule, Signal
from stream_app.scoring.state import DAY, LeadState

MAX_SIGNAL_LOG = 200
#: Logged instead of a missing session id (then the event id): such views are
#: grouped into visits by their times when a signal counts distinct sessions.
NO_SESSION = "\x00"
SESSION_FIELD = "session_id"


def groups_visits(sig: Signal) -> bool:
    """Whether ``sig`` counts visits: distinct sessions, views without one grouped by time."""
    return sig.distinct == SESSION_FIELD


def _distinct(window: list[tuple[float, str]], gap: float) -> int:
    """Distinct values; entries without a session count one per visit (a gap > ``gap`` apart)."""
    values: set[str] = set()
    visits = 0
    previous: float | None = None
    for t, value in window:
        if value.startswith(NO_SESSION):
            if previous is None or t - previous > gap:
                visits += 1
            previous = t
        else:
            values.add(value)
    return len(values) + visits


def _signal_holds(sig: Signal, window: list[tuple[float, str]], gap: float) -> bool:
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
        if groups_visits(sig):
            return _distinct(window, gap) >= sig.min_count
        return len({value for _, value in window}) >= sig.min_count
    return len(window) >= sig.min_count


def award_signals(state: LeadState, sig: Signal, since: float, gap: float) -> None:
    """Mark each day on which a window ending at a logged event >= ``since`` satisfies ``sig``.

    Awards are a set of days, so checking a window twice, or in another
    order, gives the same awards. ``since`` of ``-inf`` checks every window
    (a merged log: windows the two histories only fill together).

    A signal that groups views into visits (``groups_visits``) is the one
    whose windows a new event can *un*-fill: a view between two visits joins
    them into one. Its days from ``since``'s on are decided again, whole days,
    held or not, so the awards depend only on the log, not on arrival order.
    """
    log = state.signal_log.get(sig.id, [])
    within = sig.within_days * DAY
    days = state.buckets.setdefault(sig.id, {})
    last = since + within if since != float("-inf") else float("inf")
    if groups_visits(sig):
        first_day = since if since == float("-inf") else int(since // DAY) * DAY
        last_day = int(last // DAY) if last != float("inf") else None
        decided: dict[int, bool] = {}
        for end in range(bisect.bisect_left(log, (first_day, "")), len(log)):
            t_end = log[end][0]
            day = int(t_end // DAY)
            if last_day is not None and day > last_day:
                break
            lo = bisect.bisect_left(log, (t_end - within, ""))
            decided[day] = decided.get(day, False) or _signal_holds(sig, log[lo : end + 1], gap)
        for day, held in decided.items():
            if held:
                days[day] = 1
            else:
                days.pop(day, None)
        return
    start = bisect.bisect_left(log, (since, ""))
    for end in range(start, len(log)):
        t_end = log[end][0]
        if t_end > last:
            break
        lo = bisect.bisect_left(log, (t_end - within, ""))
        if _signal_holds(sig, log[lo : end + 1], gap):
            days[int(t_end // DAY)] = 1


def record_signal(
    state: LeadState, rule: CompiledRule, event: InboundEvent, t: float, gap: float
) -> None:
    """Log ``event`` for its signal and award the days it now holds; ``gap``: visit timeout, s."""
    sig = rule.signal
    assert sig is not None
    field_name = sig.sequence.field if sig.sequence else sig.distinct
    value = getattr(event, field_name) if field_name else None
    if value is not None:
        entry = str(value)
    elif field_name == SESSION_FIELD:
        entry = NO_SESSION + event.event_id
    else:
        entry = event.event_id
    log = state.signal_log.setdefault(sig.id, [])
    bisect.insort(log, (t, entry))
    if len(log) > MAX_SIGNAL_LOG:
        del log[: len(log) - MAX_SIGNAL_LOG]
    award_signals(state, sig, t, gap)
