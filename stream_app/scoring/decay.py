"""Decay: engagement halves every ``half_life`` of event time, ``2 ** (-age / half_life)``.

``decay`` is the law, named once: every decayed number in the core goes
through it (bucket weights, archive fades, folding, merging, the sweep).

After the lead's last bucket, engagement is a single exponential, so the time
at which it crosses a line is computed exactly (``crossing_time``): decay
demotions carry that event time whenever the sweep notices them.
"""

from __future__ import annotations

import math


def decay(age: float, half_life: float) -> float:
    """What a point is worth ``age`` seconds of event time after it was earned."""
    return 2.0 ** (-age / half_life)


def crossing_time(
    engagement_at_t0: float, t0: float, target: float, half_life: float, direction: str
) -> float | None:
    """Earliest t >= t0 where E(t) = E0 * 2^-((t - t0)/h) is below (or at/above) ``target``."""
    e0 = engagement_at_t0
    if direction == "below":
        if e0 < target:
            return t0
        if e0 > 0 < target:
            return t0 + half_life * math.log2(e0 / target)
        return None
    if e0 >= target:
        return t0
    if e0 < 0 and target < 0:
        return t0 + half_life * math.log2(e0 / target)
    return None
