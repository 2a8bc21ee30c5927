"""The dashboard's pure rendering: ids from the stream are text, never markup; the decay
projection crosses the recycle line where the half-life says."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from stream_app.scoring.rules import Rules
from stream_app.serve.dashboard.html import Html, esc, table
from stream_app.serve.dashboard.lead_page import DAY, projected_decay
from stream_app.serve.dashboard.pages import feed_row, lead_rows

HOSTILE = '"><img src=x onerror=alert(1)>'


def lead(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "lead_id": HOSTILE,
        "stage": "sql",
        "scores": {"fit": 20.0, "engagement": 80.0, "total": 100.0, "grade": "C"},
        "contributions": [{"rule": HOSTILE, "kind": "engagement", "points": 80.0}],
        "account_id": HOSTILE,
        "last_activity_at": "2026-11-02T09:00:00+00:00",
    }
    return {**base, **changes}


def test_ids_and_rule_names_from_the_stream_are_escaped() -> None:
    transition = {
        **lead(),
        "from_stage": "mql",
        "to_stage": "sql",
        "reason": "hand_raise",
        "detail": HOSTILE,
        "occurred_at": "2026-11-02T09:00:00+00:00",
    }
    for html in (lead_rows([lead()], {HOSTILE: transition}), feed_row("1-0", transition)):
        assert "<img" not in html and "&lt;img" in html
    assert table(["a"], [[HOSTILE], [Html("<b>ok</b>")]], HOSTILE).count("<b>ok</b>") == 1
    assert "<img" not in table(["a"], [[HOSTILE]], HOSTILE)
    assert esc("<") == "&lt;"


def test_the_projected_decay_crosses_the_recycle_line_at_the_half_life(rules: Rules) -> None:
    line = rules.spec.stages.recycle.below_total
    half_life = rules.spec.engagement.half_life_days
    # fit 20 + engagement 80: the total reaches the line when engagement is line - 20
    curve, crossing = projected_decay(lead(), rules)
    start = datetime(2026, 11, 2, 9, tzinfo=UTC).timestamp()
    assert crossing is not None
    assert crossing == start + half_life * DAY * math.log2(80 / (line - 20))
    assert curve[0] == (start, 100.0)
    assert math.isclose(curve[-1][1], line)
    # fit alone above the line, or a lead not qualified: no crossing
    assert projected_decay(lead(scores={**lead()["scores"], "fit": line + 1}), rules)[1] is None
    assert projected_decay(lead(stage="lead"), rules)[1] is None
    assert projected_decay(lead(last_activity_at=None), rules) == ([], None)
    assert timedelta(seconds=crossing - start) > timedelta(days=half_life)
