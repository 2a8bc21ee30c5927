"""Buckets and their windows: what a lead did, per (rule, day), and how old history folds.

A capped rule gives at most ``cap`` points per calendar window of
``window_days`` days; buckets older than the horizon fold into one decayed
number per rule (``archived``, as of ``archive_ref``).
"""

from __future__ import annotations

import bisect

from stream_app.scoring.decay import decay
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import DAY, LeadState


def fold_old_history(state: LeadState, rules: Rules) -> None:
    """Fold buckets older than the horizon into one decayed number per rule.

    Keeps state bounded; events that old are not counted any more (status
    "late"), so nothing can land in a folded window later.
    """
    assert state.newest_at is not None
    line = state.newest_at - rules.horizon_seconds
    half_life = rules.half_life_seconds
    ref = max(line, state.archive_ref or line)
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
                folded[0] += effective * decay(ref - (d + 1) * DAY, half_life)
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
