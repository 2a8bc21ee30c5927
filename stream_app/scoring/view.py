"""Scores of one lead at a given event time: fit, engagement, total, grade, why.

Engagement decays exponentially with event time: a point earned ``h`` days
(the half-life) before ``now`` is worth half a point. Each (rule, day) bucket
decays from the end of its day, so activity today counts in full. Capped rules
give at most ``cap`` points in any ``per_days`` consecutive days: oldest day
first, a day's events count while the rolling window ending on it has room
(``buckets.capped_counts``). Both rules are order-independent: the same events
give the same score in any order.

After the lead's last bucket, engagement is a single exponential, so the time
at which it crosses a line is computed exactly (``crossing_time``): decay
demotions carry that event time whenever the sweep notices them (``decay``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import reduce
from operator import add, mul
from typing import Any, Literal

from stream_app.scoring.buckets import effective_counts
from stream_app.scoring.decay import decay as _decay
from stream_app.scoring.rules import CompiledRule, Rules
from stream_app.scoring.state import DAY, LeadState

Kind = Literal["fit", "engagement", "signal"]


@dataclass(frozen=True, slots=True)
class ScoreView:
    """A lead's scores at one time; ``contributions`` is sorted when first read.

    Most views are only compared with the stage lines and the settle time;
    a transition or a score update reads the contributions.
    """

    fit: float
    engagement: float
    total: float
    grade: str
    # (fit rule id -> points, rule id -> engagement points, the rules by id): read only
    parts: tuple[Mapping[str, float], Mapping[str, float], Mapping[str, CompiledRule]] | None = (
        field(default=None, repr=False, compare=False)
    )
    _sorted: tuple[tuple[str, Kind, float], ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def contributions(self) -> tuple[tuple[str, Kind, float], ...]:
        """(rule id, kind, points), largest first; engagement under 0.005 points left out."""
        made = self._sorted
        if made is None:
            made = _contributions_of(self.parts) if self.parts is not None else ()
            object.__setattr__(self, "_sorted", made)
        return made


def _contributions_of(
    parts: tuple[Mapping[str, float], Mapping[str, float], Mapping[str, CompiledRule]],
) -> tuple[tuple[str, Kind, float], ...]:
    fit_parts, eng_parts, by_id = parts
    contributions: list[tuple[str, Kind, float]] = [(r, "fit", p) for r, p in fit_parts.items()]
    for rule_id, points in eng_parts.items():
        if abs(points) >= 0.005:
            kind: Kind = "signal" if by_id[rule_id].kind == "signal" else "engagement"
            contributions.append((rule_id, kind, points))
    contributions.sort(key=_largest_first)
    return tuple(contributions)


def fit_of(profile: Mapping[str, Any], rules: Rules) -> tuple[float, dict[str, float]]:
    """Fit points of a profile, and which fit rules gave them."""
    parts = {rule.id: rule.points for rule, pred in rules.fit_rules if pred(profile.get)}
    return sum(parts.values()), parts


def disqualifier_of(profile: Mapping[str, Any], rules: Rules) -> str | None:
    """Id of the first hard exclusion the profile matches, if any."""
    for rule, pred in rules.disqualifiers:
        if pred(profile.get):
            return rule.id
    return None


def grade_of(fit: float, rules: Rules) -> str:
    for grade in rules.spec.fit.grades:
        if grade.min_fit is None or fit >= grade.min_fit:
            return grade.grade
    raise AssertionError("the last grade has no min_fit (checked on load)")


#: Weights at shared times (a settle time is the end of a day, for many leads at
#: once): (time, half-life) -> day -> weight; bounded, cleared when full.
_WEIGHTS_AT: dict[tuple[float, float], dict[int, float]] = {}
WEIGHT_CACHE_LIMIT = 256


def day_weights(
    state: LeadState, at: float, half_life: float, *, shared: bool = False
) -> dict[int, float]:
    """Decay weight at event time ``at`` of each bucket day (a day decays from its end).

    ``shared``: look the weights up in (and add them to) a cache of weights at
    times many leads share (settle times); a weight is a function of the day,
    ``at`` and the half-life only, so this changes no number.
    """
    all_days: set[int] = set().union(*state.buckets.values())
    if not shared:
        return {
            day: _decay(at - (day + 1) * DAY, half_life) if at > (day + 1) * DAY else 1.0
            for day in all_days
        }
    known = _WEIGHTS_AT.get((at, half_life))
    if known is None:
        if len(_WEIGHTS_AT) >= WEIGHT_CACHE_LIMIT:
            _WEIGHTS_AT.clear()
        known = _WEIGHTS_AT[(at, half_life)] = {}
    for day in all_days.difference(known):
        end = (day + 1) * DAY
        known[day] = _decay(at - end, half_life) if at > end else 1.0
    return known


def rule_points(
    rule: CompiledRule,
    days: dict[int, int],
    weights: Mapping[int, float],
    carry: dict[int, float] | None = None,
) -> float:
    """A rule's effective, decayed event count over its buckets (times ``points``: its score).

    A capped rule counts each day's events only while the rolling window ending
    on that day has room (``buckets.capped_counts``; ``carry``: folded days
    still in a window). The sum is sequential, in bucket order, always the same
    float operations in the same order (``reduce(add, ..., 0.0)`` is ``acc = 0.0;
    acc += x`` run in C), so the same state gives the same float to any caller.
    """
    counts = effective_counts(rule, days, carry)
    if counts is None:  # uncapped, or under the cap everywhere: every event counts
        terms = map(mul, days.values(), map(weights.__getitem__, days))
        return 0.0 + reduce(add, terms, 0.0)
    return 0.0 + reduce(
        add, map(mul, map(counts.__getitem__, days), map(weights.__getitem__, days)), 0.0
    )


def _counts(
    state: LeadState, rules: Rules, weights: Mapping[int, float]
) -> Iterator[tuple[str, CompiledRule, float]]:
    """Each bucketed rule's effective, decayed event count, in bucket order.

    A rule removed from the file no longer counts.
    """
    by_id = rules.by_id
    cap_carry = state.cap_carry
    get_weight = weights.__getitem__
    for rule_id, days in state.buckets.items():
        rule = by_id.get(rule_id)
        if rule is None or not days:
            continue
        limit = rule.cap_events
        carry = cap_carry.get(rule_id) if limit is not None else None
        if limit is None or (not carry and sum(days.values()) <= limit):
            # every event counts: rule_points' own sum, without the call
            yield (
                rule_id,
                rule,
                0.0 + reduce(add, map(mul, days.values(), map(get_weight, days)), 0.0),
            )
        else:
            yield rule_id, rule, rule_points(rule, days, weights, carry)


def engagement_of(
    state: LeadState, rules: Rules, now: float, *, decay: bool = True, shared: bool = False
) -> tuple[float, dict[str, float]]:
    """Engagement points at event time ``now`` (undecayed with ``decay=False``), per rule.

    The total is the sum of the per-rule points, in bucket order, then each
    folded rule's archive added to its rule's share. ``shared``: ``now`` is a
    time many leads share (see ``day_weights``).
    """
    half_life = rules.half_life_seconds
    by_id = rules.by_id
    if decay:
        weights: Mapping[int, float] = day_weights(state, now, half_life, shared=shared)
    else:
        weights = {day: 1.0 for days in state.buckets.values() for day in days}
    per_rule = {
        rule_id: rule.points * count for rule_id, rule, count in _counts(state, rules, weights)
    }
    if state.archived and state.archive_ref is not None:
        age = now - state.archive_ref
        fade = _decay(age, half_life) if age > 0 else 1.0
        for rule_id, (decayed, raw_count) in state.archived.items():
            rule = by_id.get(rule_id)
            if rule is not None:
                extra = rule.points * (decayed * fade if decay else raw_count)
                per_rule[rule_id] = per_rule.get(rule_id, 0.0) + extra
    return sum(per_rule.values()), per_rule


def engagement_settled(state: LeadState, rules: Rules, later: float) -> float:
    """Engagement at ``later`` summed rule by rule, archives last, as the view pass does it.

    ``next_change_at`` uses this order when it is given the view of the state
    (the engine's order since the view and the settle time were one pass), and
    ``engagement_of``'s otherwise; both orders are kept so outputs stay the same
    to the last bit.
    """
    half_life = rules.half_life_seconds
    by_id = rules.by_id
    weights = day_weights(state, later, half_life, shared=True)
    total_later = 0.0
    for _, counted, count in _counts(state, rules, weights):
        total_later += counted.points * count
    ref = state.archive_ref
    if state.archived and ref is not None:
        fade_later = _decay(later - ref, half_life) if later > ref else 1.0
        for rule_id, (decayed, _) in state.archived.items():
            rule = by_id.get(rule_id)
            if rule is not None:
                total_later += rule.points * decayed * fade_later
    return total_later


def refresh_profile_cache(state: LeadState, rules: Rules) -> None:
    """Recompute fit and exclusion if the profile or the rules changed since last time."""
    if state.scored_with != rules.stamp:
        _, state.fit_points = fit_of(state.profile, rules)
        state.excluded_by = disqualifier_of(state.profile, rules)
        state.scored_with = rules.stamp


def view_of(state: LeadState, rules: Rules, now: float) -> ScoreView:
    """Scores at ``now``; a lead a hard exclusion matches scores nothing (``EXCLUDED``).

    A competitor or a student must never look hot to sales, in a transition,
    a hottest-lead list or an account's roll-up. Its history is kept, so if the
    exclusion stops matching (a corrected profile) the score comes back.
    """
    refresh_profile_cache(state, rules)
    if state.excluded_by is not None:
        return excluded_view(rules)
    fit_parts = state.fit_points
    fit = sum(fit_parts.values())
    engagement, eng_parts = engagement_of(state, rules, now)
    return ScoreView(
        fit=fit,
        engagement=engagement,
        total=fit + engagement,
        grade=grade_of(fit, rules),
        parts=(fit_parts, eng_parts, rules.by_id),
    )


def excluded_view(rules: Rules) -> ScoreView:
    """The scores of a disqualified lead: 0 fit, 0 engagement, the lowest (catch-all) grade."""
    return ScoreView(fit=0.0, engagement=0.0, total=0.0, grade=rules.spec.fit.grades[-1].grade)


def _largest_first(c: tuple[str, Kind, float]) -> tuple[float, str]:
    return (-abs(c[2]), c[0])


def settle_time(state: LeadState) -> float | None:
    """Event time after which every bucket decays at the same rate (end of last bucket day)."""
    latest = max((max(days) for days in state.buckets.values() if days), default=None)
    ends = (latest + 1) * DAY if latest is not None else None
    candidates = [t for t in (ends, state.archive_ref, state.newest_at) if t is not None]
    return max(candidates) if candidates else None
