"""SQL-checklist signals: a log of matching events per signal, and the days it held.

A signal holds on a day when a window of ``within_days`` ending at a logged
event on that day satisfies it (``min_count`` events, ``distinct`` values or
a ``sequence`` in order). The days it held are kept as a (signal, day)
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


def award_signals(state: LeadState, sig: Signal, since: float) -> None:
    """Mark each day on which a window ending at a logged event >= ``since`` satisfies ``sig``.

    Awards are a set of days, so checking a window twice, or in another
    order, gives the same awards. ``since`` of ``-inf`` checks every window
    (a merged log: windows the two histories only fill together).
    """
    log = state.signal_log.get(sig.id, [])
    within = sig.within_days * DAY
    days = state.buckets.setdefault(sig.id, {})
    start = bisect.bisect_left(log, (since, ""))
    last = since + within if since != float("-inf") else float("inf")
    for end in range(start, len(log)):
        t_end = log[end][0]
        if t_end > last:
            break
        lo = bisect.bisect_left(log, (t_end - within, ""))
        if _signal_holds(sig, log[lo : end + 1]):
            days[int(t_end // DAY)] = 1


def record_signal(state: LeadState, rule: CompiledRule, event: InboundEvent, t: float) -> None:
    sig = rule.signal
    assert sig is not None
    field_name = sig.sequence.field if sig.sequence else sig.distinct
    value = getattr(event, field_name) if field_name else None
    log = state.signal_log.setdefault(sig.id, [])
    bisect.insort(log, (t, str(value) if value is not None else event.event_id))
    if len(log) > MAX_SIGNAL_LOG:
        del log[: len(log) - MAX_SIGNAL_LOG]
    award_signals(state, sig, t)
