"""Buckets and their windows: what a lead did, per (rule, day), caps, and how old history folds.

A capped rule gives at most ``cap`` points in *any* ``window_days``
consecutive (UTC) days, as marketers read "10 points per 7 days": day by day,
oldest first, a day earns its events' points until the rolling window ending
on it is full (``capped_counts``). That is a function of the buckets alone, so
the same events give the same points in any order. Buckets older than the
horizon fold into one decayed number per rule (``archived``, as of
``archive_ref``); the folded days still inside a cap window of the kept ones
stay as ``cap_carry`` so the window keeps counting them.
"""

from __future__ import annotations

import bisect
from collections import deque

from stream_app.scoring.decay import decay
from stream_app.scoring.rules import CompiledRule, Rules
from stream_app.scoring.state import DAY, LeadState


def capped_counts(
    days: dict[int, int], limit: float, span: int, carry: dict[int, float] | None = None
) -> dict[int, float]:
    """Effective event count of each day under "at most ``limit`` events in any ``span`` days".

    Oldest day first, each day counts its events until the window of ``span``
    days ending on it holds ``limit``; ``carry`` holds folded days' counts.
    """
    recent: deque[tuple[int, float]] = deque(sorted(carry.items()) if carry else ())
    used = 0.0  # the window's count, always summed oldest first (the same floats either way)
    for _, earned in recent:
        used += earned
    out: dict[int, float] = {}
    for day in sorted(days):
        if recent and recent[0][0] <= day - span:
            while recent and recent[0][0] <= day - span:
                recent.popleft()
            used = 0.0
            for _, earned in recent:
                used += earned
        room = limit - used
        count = days[day]
        earned = float(count) if count <= room else max(room, 0.0)
        recent.append((day, earned))
        used += earned
        out[day] = earned
    return out


def effective_counts(
    rule: CompiledRule, days: dict[int, int], carry: dict[int, float] | None
) -> dict[int, float] | None:
    """Each day's effective count under the rule's cap, or None when every event counts in full."""
    limit = rule.cap_events  # events; a negative rule's cap bounds the loss
    if limit is None:
        return None
    if not carry and sum(days.values()) <= limit:
        return None
    span = rule.window_days
    slot = (id(days), limit, span)
    known = _CAPPED.get(slot)
    # The counts are a function of (days, carry, limit, span) alone: a hit needs equal
    # inputs, so a recycled id() can only find counts that are right for it anyway.
    if known is not None and known[0] == days and known[1] == carry:
        return known[2]
    counts = capped_counts(days, limit, span, carry)
    if len(_CAPPED) >= CAPPED_CACHE_LIMIT:
        _CAPPED.clear()
    _CAPPED[slot] = (dict(days), dict(carry) if carry else carry, counts)
    return counts


#: Capped counts last computed per bucket dict (the view and the settle time of one
#: event, and the next events of a lead that did not touch the rule, ask again):
#: (id of the days dict, limit, span) -> (copy of the days, copy of the carry, counts).
#: Bounded; a full cache starts again. The counts returned are shared: read them only.
_Capped = tuple[dict[int, int], dict[int, float] | None, dict[int, float]]
_CAPPED: dict[tuple[int, float, int], _Capped] = {}
CAPPED_CACHE_LIMIT = 4096


def fold_old_history(state: LeadState, rules: Rules) -> None:
    """Fold buckets older than the horizon into one decayed number per rule.

    Keeps state bounded; events that old are not counted any more (status
    "late"), so nothing can land in a folded day later.
    """
    assert state.newest_at is not None
    line = state.newest_at - rules.horizon_seconds
    first_touch = state.first_touch_at
    if first_touch is None or first_touch < line or state.archived or state.cap_carry:
        fold_all(state, rules)
        return
    # The common case: the lead's first event is within the horizon, so no bucket day,
    # signal log entry or seen id is older, and nothing was folded before. Only what the
    # full pass would also drop is dropped: empty buckets and removed rules' buckets.
    by_id = rules.by_id
    buckets = state.buckets
    for rule_id in [r for r, days in buckets.items() if not days or r not in by_id]:
        del buckets[rule_id]
    state.archive_ref = max(line, state.archive_ref or line)


def fold_all(state: LeadState, rules: Rules) -> None:
    """``fold_old_history``'s full pass: every bucket, carry, signal log and seen id."""
    assert state.newest_at is not None
    line = state.newest_at - rules.horizon_seconds
    ref = max(line, state.archive_ref or line)
    first_kept = int(line // DAY)  # the oldest day that can still get events
    half_life = rules.half_life_seconds
    if state.archive_ref is not None and ref > state.archive_ref:
        fade = decay(ref - state.archive_ref, half_life)
        for values in state.archived.values():
            values[0] *= fade
    for rule_id in list(state.buckets):
        days = state.buckets[rule_id]
        rule = rules.by_id.get(rule_id)
        if rule is None:
            del state.buckets[rule_id]  # the rule left the rules file
            continue
        if not days:
            del state.buckets[rule_id]
            continue
        if min(days) >= first_kept:
            continue  # every day is within the horizon: nothing to fold
        carry = state.cap_carry.get(rule_id)
        counts = effective_counts(rule, days, carry)
        folded = state.archived.setdefault(rule_id, [0.0, 0.0])
        kept_carry = (
            {d: c for d, c in carry.items() if d > first_kept - rule.window_days} if carry else {}
        )
        for d in sorted(d for d in days if d < first_kept):
            count = days.pop(d)
            effective = float(count) if counts is None else counts[d]
            folded[0] += effective * decay(ref - (d + 1) * DAY, half_life)
            folded[1] += effective
            if rule.cap is not None and d > first_kept - rule.window_days:
                kept_carry[d] = effective
        if kept_carry:
            state.cap_carry[rule_id] = kept_carry
        if not days:
            del state.buckets[rule_id]
    for rule_id in list(state.cap_carry):
        rule = rules.by_id.get(rule_id)
        carry = state.cap_carry[rule_id]
        if rule is not None:
            for d in [d for d in carry if d <= first_kept - rule.window_days]:
                del carry[d]
        if rule is None or not carry:
            del state.cap_carry[rule_id]
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
