"""Outputs built when first read: a score update or a view's contributions read late equal
the ones read at once."""

from __future__ import annotations

from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.scoring.view import view_of
from tests.factories import generated


def test_a_score_update_read_after_later_events_is_the_one_read_at_once(rules: Rules) -> None:
    events = generated(40, 7, 1500)
    at_once = Replay(rules)
    read_now = [step.update for step in map(at_once.process, events)]
    later = Replay(rules)
    steps = [later.process(e) for e in events]  # the states change in place meanwhile
    read_later = [step.update for step in steps]
    assert sum(u is not None for u in read_now) > 150
    assert [u.model_dump_json() if u else None for u in read_later] == [
        u.model_dump_json() if u else None for u in read_now
    ]
    # leads score several times each: a basis that kept the live state would differ
    leads = [u.lead_id for u in read_later if u is not None]
    assert len(set(leads)) < len(leads) / 5


def test_a_views_contributions_are_sorted_largest_first_when_read(rules: Rules) -> None:
    replay = Replay(rules)
    for event in generated(40, 7, 1500):
        replay.process(event)
    lead = max(replay.leads(), key=lambda s: len(s.buckets))
    assert lead.newest_at is not None
    view = view_of(lead, rules, lead.newest_at)
    made = view.contributions
    assert made is view.contributions  # made once
    assert len(made) >= 3
    assert [abs(p) for _, _, p in made] == sorted((abs(p) for _, _, p in made), reverse=True)
    assert {k for _, k, _ in made} <= {"fit", "engagement", "signal"}
    assert all(abs(p) >= 0.005 for _, k, p in made if k != "fit")
    total = sum(p for _, _, p in made)
    assert abs(total - view.total) < 0.005 * len(made) + 1e-9
