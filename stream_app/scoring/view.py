"""Scores of one lead at a given event time: fit, engagement, total, grade, why.

Engagement decays exponentially with event time: a point earned ``h`` days
(the half-life) before ``now`` is worth half a point. Each (rule, day) bucket
decays from the end of its day, so activity today counts in full. Capped rules
give at most ``cap`` points per calendar window of ``per_days`` days; when a
window holds more, every event in it counts proportionally less. Both rules
are order-independent: the same events give the same score in any order.

After the lead's last bucket, engagement is a single exponential, so the time
at which it crosses a line is computed exactly (``crossing_time``): decay
demotions carry that event time whenever the sweep notices them (``decay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stream_app.scoring.decay import decay as decay_of
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import DAY, LeadState

Kind = Literal["fit", "engagement", "signal"]


@dataclass(frozen=True, slots=True)
class ScoreView:
    fit: float
    engagement: float
    total: float
    grade: str
    contributions: tuple[tuple[str, Kind, float], ...]  # (rule id, kind, points), largest first
    settle_at: float | None = None  # see settle_time
    engagement_settled: float | None = None  # engagement at settle_at


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


def engagement_of(
    state: LeadState, rules: Rules, now: float, *, decay: bool = True
) -> tuple[float, dict[str, float]]:
    """Engagement points at event time ``now`` (undecayed with ``decay=False``), per rule."""
    total, per_rule, _ = engagement_twice(state, rules, now, None, decay=decay)
    return total, per_rule


def engagement_twice(
    state: LeadState, rules: Rules, now: float, later: float | None, *, decay: bool = True
) -> tuple[float, dict[str, float], float | None]:
    """Engagement at ``now`` (total and per rule) and, in the same pass, the total at ``later``.

    One pass over the buckets serves both the lead's current score and the
    decay sweep's crossing-time computation: this is the engine's hot loop.
    """
    half_life = rules.half_life_seconds
    weights: dict[int, tuple[float, float]] = {}
    per_rule: dict[str, float] = {}
    total_later = 0.0
    for rule_id, days in state.buckets.items():
        rule = rules.by_id.get(rule_id)
        if rule is None or not days:
            continue  # a rule removed from the file no longer counts
        if rule.cap is None:
            groups: list[tuple[float, list[tuple[int, int]]]] = [(1.0, list(days.items()))]
        else:
            windows: dict[int, list[tuple[int, int]]] = {}
            span = rule.window_days
            for item in days.items():
                key = item[0] // span
                if key in windows:
                    windows[key].append(item)
                else:
                    windows[key] = [item]
            groups = []
            for items in windows.values():
                raw = 0
                for _, count in items:
                    raw += count
                groups.append((min(1.0, rule.cap / (rule.points * raw)), items))
        points = points_later = 0.0
        for factor, items in groups:
            acc = acc_later = 0.0
            for day, count in items:
                pair = weights.get(day)
                if pair is None:
                    end = (day + 1) * DAY
                    w_now = decay_of(now - end, half_life) if decay and now > end else 1.0
                    w_later = (
                        decay_of(later - end, half_life)
                        if later is not None and later > end
                        else 1.0
                    )
                    pair = weights[day] = (w_now, w_later)
                acc += count * pair[0]
                acc_later += count * pair[1]
            points += factor * acc
            points_later += factor * acc_later
        per_rule[rule_id] = rule.points * points
        total_later += rule.points * points_later
    if state.archived and state.archive_ref is not None:
        age = now - state.archive_ref
        fade = decay_of(age, half_life) if age > 0 else 1.0
        fade_later = (
            decay_of(later - state.archive_ref, half_life)
            if later is not None and later > state.archive_ref
            else 1.0
        )
        for rule_id, (decayed, raw_count) in state.archived.items():
            rule = rules.by_id.get(rule_id)
            if rule is not None:
                extra = rule.points * (decayed * fade if decay else raw_count)
                per_rule[rule_id] = per_rule.get(rule_id, 0.0) + extra
                total_later += rule.points * decayed * fade_later
    return sum(per_rule.values()), per_rule, (total_later if later is not None else None)


def refresh_profile_cache(state: LeadState, rules: Rules) -> None:
    """Recompute fit and exclusion if the profile or the rules changed since last time."""
    if state.scored_with != rules.stamp:
        _, state.fit_points = fit_of(state.profile, rules)
        state.excluded_by = disqualifier_of(state.profile, rules)
        state.scored_with = rules.stamp


def view_of(state: LeadState, rules: Rules, now: float) -> ScoreView:
    """Scores at ``now``, and the engagement at the lead's settle time (for the sweep)."""
    refresh_profile_cache(state, rules)
    fit_parts = state.fit_points
    fit = sum(fit_parts.values())
    settle_at = settle_time(state)
    engagement, eng_parts, settled = engagement_twice(state, rules, now, settle_at)
    contributions: list[tuple[str, Kind, float]] = [(r, "fit", p) for r, p in fit_parts.items()]
    for rule_id, points in eng_parts.items():
        kind: Kind = "signal" if rules.by_id[rule_id].kind == "signal" else "engagement"
        if abs(points) >= 0.005:
            contributions.append((rule_id, kind, points))
    contributions.sort(key=lambda c: (-abs(c[2]), c[0]))
    return ScoreView(
        fit=fit,
        engagement=engagement,
        total=fit + engagement,
        grade=grade_of(fit, rules),
        contributions=tuple(contributions),
        settle_at=settle_at,
        engagement_settled=settled,
    )


def settle_time(state: LeadState) -> float | None:
    """Event time after which every bucket decays at the same rate (end of last bucket day)."""
    ends = [(max(days) + 1) * DAY for days in state.buckets.values() if days]
    candidates = [t for t in (*ends, state.archive_ref, state.newest_at) if t is not None]
    return max(candidates) if candidates else None
