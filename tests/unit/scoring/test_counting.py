"""Counting an event into a state: when the cached fit must be computed again, and folding."""

from __future__ import annotations

from stream_app.scoring.buckets import fold_all, fold_old_history
from stream_app.scoring.counting import count_event
from stream_app.scoring.engine import apply_event
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import DAY
from tests.factories import VP_PROFILE, ev, generated


def test_repeated_traits_keep_the_cached_fit_and_a_change_drops_it(rules: Rules) -> None:
    state = apply_event(None, ev("profile_update", lead_id="L1", **VP_PROFILE), rules).state
    assert state.newest_at is not None
    assert state.scored_with == rules.stamp and state.fit_points

    # an identify that repeats the same traits (str and int values) keeps the cache
    same = ev("profile_update", hours=1, lead_id="L1", **VP_PROFILE)
    count_event(state, same, state.newest_at + 3600, rules)
    assert state.scored_with == rules.stamp

    for changed in ({"country": "BR"}, {"company_size": 401}):
        moved = ev("profile_update", hours=2, lead_id="L1", **{**VP_PROFILE, **changed})
        count_event(state, moved, state.newest_at + 3600, rules)
        assert state.scored_with is None, changed  # fit and exclusion are computed again
        state.scored_with = rules.stamp


def test_folding_takes_the_short_way_only_when_the_full_pass_changes_nothing_else(
    rules: Rules,
) -> None:
    # fold_old_history skips the full pass when the lead's first event is inside the
    # horizon; both must leave the same state, for states seen in a replay moved on by
    # amounts around the horizon, with an empty bucket and a removed rule's bucket.
    replay = Replay(rules)
    short = full = 0
    horizon = rules.horizon_seconds
    for n, event in enumerate(generated(30, 3, 2500)):
        step = replay.process(event)
        state = replay.states[step.key]
        if state.newest_at is None or state.first_touch_at is None:
            continue
        for ahead in (0.0, 3 * DAY, horizon - DAY, horizon + 2 * DAY, 3 * horizon):
            a, b = state.copy(), state.copy()
            for s in (a, b):
                assert s.newest_at is not None
                s.newest_at += ahead
                if n % 3 == 0:
                    s.buckets["a_rule_no_longer_in_the_file"] = {int(s.newest_at // DAY): 1}
                    s.buckets.setdefault("empty", {})
            quick = a.first_touch_at >= a.newest_at - horizon and not a.archived  # type: ignore[operator]
            short += quick and not a.cap_carry
            full += not quick
            fold_old_history(a, rules)
            fold_all(b, rules)
            assert a.to_json() == b.to_json()
    assert short > 300 and full > 300
