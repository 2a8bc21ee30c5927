"""evaluate's judgement on literal leads: who is judged, the refusal, the MQLs a rule decided."""

from __future__ import annotations

import pytest

from stream_app.outcomes.evaluation import Label, NotEnoughOutcomes, evaluate, judge, rule_table
from stream_app.outcomes.observe import observe
from tests.factories import VP_PROFILE, default_rules, ev


def _leads(n: int, won_every: int, *, end_day: float = 200) -> list:  # type: ignore[type-arg]
    """``n`` VP leads that cross the MQL line on one pricing view; every ``won_every``-th wins
    ten days later; the data ends at ``end_day`` (a last event of another lead)."""
    events = [ev("page_view", day=end_day, lead_id="last", path="/")]
    for k in range(n):
        lead = f"L{k}"
        events += [
            ev("profile_update", day=k % 20, lead_id=lead, **VP_PROFILE),
            ev("page_view", day=k % 20, hours=1, lead_id=lead, path="/pricing"),
        ]
        if k % won_every == 0:
            events.append(ev("sales_feedback", day=k % 20 + 10, lead_id=lead, outcome="won"))
    return sorted(events, key=lambda e: e.occurred_at)


def test_too_little_data_is_a_refusal_naming_what_is_missing() -> None:
    observation = observe(_leads(30, won_every=3), default_rules())
    with pytest.raises(NotEnoughOutcomes) as refused:
        evaluate(observation, Label(within_days=90))
    message = str(refused.value)
    assert "30 leads reached sales" in message and "need 200" in message
    assert "10 of them won (need 40)" in message


def test_a_lead_still_inside_its_window_is_not_judged() -> None:
    events = _leads(4, won_every=2, end_day=15)  # L0 and L2 won 10 days after; data ends at 15
    judged, censored = judge(observe(events, default_rules()), Label(within_days=90))
    assert {j.record.lead_id for j in judged} == {"L0", "L2"}  # positive already
    assert censored == 2


def test_rules_table_lift_and_the_mqls_a_rule_decided() -> None:
    observation = observe(_leads(60, won_every=2), default_rules())
    report = evaluate(observation, Label(within_days=20, min_leads=20, min_positive=5))
    pricing = report["rules"]["pricing_page"]
    # every lead crossed the MQL line on its pricing view: without its 20 points, none would
    assert pricing["fired_leads"] == report["leads"]["judged"]
    assert pricing["decided_mqls"] == report["leads"]["reached_sales"]
    assert pricing["lift"] == pytest.approx(1.0)
    assert report["rules"]["blog_view"]["ever_fired"] is False
    assert any(f["flag"] == "never_fired" and "blog_view" in f["rules"] for f in report["review"])
    assert set(report) >= {"leads", "outcomes", "auc", "rules"}
    judged, _ = judge(observation, Label(within_days=20))
    assert rule_table(observation, judged, 0.5)["pricing_page"]["rate"] == pytest.approx(0.5)
