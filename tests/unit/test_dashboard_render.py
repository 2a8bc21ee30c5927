"""The dashboard's pure rendering: ids from the stream are text, never markup; the score
chart's projection ends where the core itself demotes the lead."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stream_app.scoring.engine import advance, score_update, ts
from stream_app.scoring.rules import Rules
from stream_app.serve.dashboard import pages
from stream_app.serve.dashboard.html import Html, esc, table
from stream_app.serve.dashboard.lead_page import DAY, projected_decay
from stream_app.serve.dashboard.pages import feed_row, lead_rows
from tests.factories import VP_PROFILE, ev, run

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


def test_the_chart_ends_where_the_core_demotes_the_lead(rules: Rules) -> None:
    # An MQL waiting on its SLA: the worker's timer is due at the SLA deadline first,
    # so the score update must tell the demotion's own time, and the chart draw it.
    replay, _ = run(
        rules,
        [
            ev("profile_update", lead_id="L1", **VP_PROFILE),
            ev("page_view", hours=2, lead_id="L1", path="/pricing"),
        ],
    )
    state = replay.states["L1"]
    update = score_update(state, rules)
    assert update.sla_due_at is not None and update.next_change_at is not None
    assert update.sla_due_at < update.next_change_at
    curve, change = projected_decay(update.model_dump(mode="json"), rules)
    demotion = advance(state, rules, ts(update.next_change_at) + 400 * DAY).transitions[0]
    assert (demotion.to_stage, demotion.reason) == ("recycled", "decay")
    assert change == ts(demotion.occurred_at)
    start = ts(update.last_activity_at)
    assert curve[0] == (start, update.scores.total)
    assert curve[-1][0] == change
    # past the SLA (breached: no deadline any more) the cached due time is the demotion
    later = advance(state, rules, ts(update.sla_due_at) + 1).state
    assert score_update(later, rules).next_change_at == update.next_change_at
    # a lead decay never moves: no time, and a 60-day curve
    assert projected_decay(lead(stage="lead"), rules)[1] is None
    assert projected_decay(lead(last_activity_at=None), rules) == ([], None)


def test_the_rules_page_says_since_when_the_worker_scores_with_this_file(rules: Rules) -> None:
    start = datetime(2026, 12, 8, 9, tzinfo=UTC).timestamp()
    live = pages.rules(rules, "now", "then", [(rules.stamp, start), ("old", start - DAY)], {})
    assert '<dd data-metric="rules-since">2026-12-08 09:00 UTC</dd>' in live
    assert live.index(rules.stamp) < live.index("<code>old</code>")  # the newest first
    waiting = pages.rules(rules, "now", "then", [("old", start)], {"old": "2026-12-07"})
    assert '<dd data-metric="rules-since">not yet: no score update' in waiting
