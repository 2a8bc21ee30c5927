"""Counting an event into a state: when the profile's cached fit must be computed again."""

from __future__ import annotations

from stream_app.scoring.counting import count_event
from stream_app.scoring.engine import apply_event
from stream_app.scoring.rules import Rules
from tests.factories import VP_PROFILE, ev


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
