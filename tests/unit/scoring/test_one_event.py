"""Can one accepted event make a lead stop counting its later, timely events? (issue 25)

"Accepted" is what the boundary lets through (``codec.decode`` with the message's
arrival): an event dated at most the clock skew after its message reached us. "Timely"
is a real event that reaches us less than the rules' horizon minus that skew after it
happened. Each way one event could poison a lead's state is tried here: a far-future
time, the skew's edge, the horizon's edge, a huge or a reused id, the de-duplication
floor, a merged visitor (docs/guarantees.md, "One event cannot silence a lead").
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.dead_letter import DeadLetter
from schemas.events import Erase, InboundEvent
from stream_app.codec import decode
from stream_app.ingest.segment import Ignored
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules, RulesSpec, compile_rules
from stream_app.scoring.state import ts
from tests.factories import T0, VP_PROFILE

SKEW = 300.0  # the default LEADSTREAM_MAX_CLOCK_SKEW_SECONDS
_ids = iter(range(10**9))


def message(kind: str, when: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": fields.pop("event_id", f"o{next(_ids)}"),
        "occurred_at": when.isoformat(),
        **fields,
    }


def decoded(event: dict[str, Any], arrived: datetime) -> InboundEvent | None:
    """The event as the worker takes it from a message that reached it at ``arrived``, or
    None if it refuses it as dated too far ahead."""
    out = decode(json.dumps(event).encode(), arrived_at=ts(arrived), max_clock_skew=SKEW)
    if isinstance(out, DeadLetter):
        assert out.reason == "future_event", out.error
        return None
    assert not isinstance(out, Erase | Ignored)
    return out


def accept(event: dict[str, Any], arrived: datetime) -> InboundEvent:
    found = decoded(event, arrived)
    assert found is not None, event
    return found


def timely(replay: Replay, lead: str, when: datetime, delay: timedelta = timedelta(0)) -> str:
    """A real page view of ``lead`` at ``when`` that reached us ``delay`` later: its status."""
    event = accept(message("page_view", when, lead_id=lead, path="/pricing"), when + delay)
    return replay.process(event).status


def test_an_event_dated_2099_is_refused_and_its_lead_counts_like_its_twin(rules: Rules) -> None:
    replay = Replay(rules)
    poison = message("page_view", T0.replace(year=2099), lead_id="A", path="/pricing")
    assert decoded(poison, T0) is None
    for lead in ("A", "B"):
        real = message("profile_update", T0, lead_id=lead, **VP_PROFILE)
        assert replay.process(accept(real, T0)).status == "counted"
        assert timely(replay, lead, T0 + timedelta(minutes=5)) == "counted"
        demo = message("form_submission", T0 + timedelta(minutes=9), lead_id=lead)
        demo["form_kind"] = "demo_request"
        assert replay.process(accept(demo, T0 + timedelta(minutes=9))).status == "counted"
    assert replay.states["A"].stage == replay.states["B"].stage == "sql"


def test_the_latest_accepted_time_leaves_a_margin_of_horizon_minus_skew(rules: Rules) -> None:
    replay = Replay(rules)
    horizon = timedelta(seconds=rules.horizon_seconds)
    ahead = message("page_view", T0 + timedelta(seconds=SKEW), lead_id="L", path="/")
    assert replay.process(accept(ahead, T0)).status == "counted"
    # a real event that reached us a whole horizon, less the skew, after it happened counts
    margin = horizon - timedelta(seconds=SKEW)
    assert timely(replay, "L", T0 - margin, delay=margin) == "counted"
    # only one older than the horizon behind the lead's newest event is late
    assert timely(replay, "L", T0 - margin - timedelta(seconds=1), delay=margin) == "late"
    assert timely(replay, "L", T0 + timedelta(minutes=1)) == "counted"


def test_an_event_on_the_horizons_edge_counts_and_so_does_what_follows(rules: Rules) -> None:
    replay = Replay(rules)
    horizon = timedelta(seconds=rules.horizon_seconds)
    assert timely(replay, "L", T0) == "counted"
    assert timely(replay, "L", T0 - horizon, delay=horizon) == "counted"  # exactly on the line
    edge_day = int(ts(T0 - horizon) // 86400)
    assert any(edge_day in days for days in replay.states["L"].buckets.values())
    assert timely(replay, "L", T0 - horizon - timedelta(microseconds=1), delay=horizon) == "late"
    for hours in (1, 30, 24 * 40):  # later days fold the edge's day; they all count
        assert timely(replay, "L", T0 + timedelta(hours=hours)) == "counted"


def test_a_huge_id_is_one_event_and_a_reused_id_costs_only_its_twin(rules: Rules) -> None:
    replay = Replay(rules)
    huge = message("page_view", T0, lead_id="L", path="/", event_id="x" * 200)
    assert replay.process(accept(huge, T0)).status == "counted"
    too_long = message("page_view", T0, lead_id="L", path="/", event_id="x" * 201)
    refused = decode(json.dumps(too_long).encode())
    assert isinstance(refused, DeadLetter) and refused.reason == "invalid_id"
    # An event that takes the id a real event will carry makes that one a duplicate (ids
    # are how a redelivery is recognised: they must be unguessable, like Segment's
    # messageId); every other real event still counts.
    taken = message("page_view", T0, lead_id="L", path="/", event_id="real-7")
    assert replay.process(accept(taken, T0)).status == "counted"
    later = T0 + timedelta(hours=1)
    reused = message("page_view", later, lead_id="L", path="/pricing", event_id="real-7")
    assert replay.process(accept(reused, later)).status == "duplicate"
    assert timely(replay, "L", later) == "counted"


def _tracking(rules: Rules, limit: int) -> Rules:
    data = rules.spec.model_dump()
    data["max_tracked_events"] = limit
    return compile_rules(RulesSpec.model_validate(data), stamp=f"tracked-{limit}")


def test_one_event_cannot_raise_the_de_duplication_floor_past_a_timely_event(
    rules: Rules,
) -> None:
    small = _tracking(rules, 10)
    replay = Replay(small)
    for n in range(10):  # ten ids tracked, the limit
        assert timely(replay, "L", T0 + timedelta(hours=n)) == "counted"
    assert replay.states["L"].seen_floor is None
    # the 11th, as far ahead as accepted, evicts the oldest id: the floor is that id's time
    ahead = message("page_view", T0 + timedelta(hours=9, seconds=SKEW), lead_id="L", path="/")
    assert replay.process(accept(ahead, T0 + timedelta(hours=9))).status == "counted"
    assert replay.states["L"].seen_floor == ts(T0)
    assert timely(replay, "L", T0 + timedelta(hours=9, minutes=1)) == "counted"
    # the bounded state's cost, for any traffic: an unseen event at or below the floor
    # (older than the newest evicted id) is taken for a duplicate
    assert timely(replay, "L", T0, delay=timedelta(hours=9)) == "duplicate"


def test_a_merged_visitor_brings_no_time_later_than_its_events_arrival(rules: Rules) -> None:
    replay = Replay(rules)
    ahead = message("page_view", T0 + timedelta(seconds=SKEW), anonymous_id="c", path="/")
    assert replay.process(accept(ahead, T0)).status == "counted"
    far = message("page_view", T0.replace(year=2099), anonymous_id="c", path="/")
    assert decoded(far, T0) is None
    link = message("identify", T0 + timedelta(minutes=1), lead_id="L", anonymous_id="c")
    assert replay.process(accept(link, T0 + timedelta(minutes=1))).status == "counted"
    assert replay.states["L"].newest_at == ts(T0) + SKEW
    assert timely(replay, "L", T0 + timedelta(minutes=2)) == "counted"


#: One event a client could send: how far from its arrival it is dated, and its id.
POISON = st.tuples(
    st.one_of(
        st.floats(-200 * 86400, 80 * 365 * 86400),  # anything from long ago to 2106
        st.sampled_from([SKEW, SKEW + 0.001, -120 * 86400.0]),  # the edges
    ),
    st.one_of(st.text("xyz-", min_size=1, max_size=200).map(str.strip), st.just("r-3")),
    st.sampled_from(["lead", "visitor"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    poison=POISON,
    history=st.lists(st.floats(0, 60 * 86400), min_size=1, max_size=8),
    later=st.lists(st.tuples(st.floats(0, 400 * 86400), st.floats(0, 86400)), max_size=6),
)
def test_no_single_accepted_event_makes_a_later_timely_event_uncounted(
    rules: Rules,
    poison: tuple[float, str, str],
    history: list[float],
    later: list[tuple[float, float]],
) -> None:
    """Real history before T0; at T0 one message from anyone (dated anywhere, any id, for
    the lead or a visitor linked to it); then real events, each reaching us within a day
    of happening: every one of those counts."""
    replay = Replay(rules)
    for n, seconds in enumerate(sorted(history)):
        when = T0 - timedelta(days=61) + timedelta(seconds=seconds)
        real = message("page_view", when, lead_id="L", path="/pricing", event_id=f"h-{n}")
        assert replay.process(accept(real, when)).status == "counted"
    offset, event_id, who = poison
    subject = {"lead_id": "L"} if who == "lead" else {"anonymous_id": "c"}
    try:
        dated = T0 + timedelta(seconds=offset)
        sent = message("page_view", dated, path="/", event_id=event_id or "p", **subject)
    except OverflowError:
        return
    if dated.year < 2100 and (event := decoded(sent, T0)) is not None:
        replay.process(event)
    if who == "visitor":
        link = message("identify", T0, lead_id="L", anonymous_id="c", event_id="link")
        replay.process(accept(link, T0))
    arrival = T0
    for n, (after, delay) in enumerate(sorted(later)):
        arrival = max(arrival, T0 + timedelta(seconds=after))
        when = arrival - timedelta(seconds=delay)
        real = message("page_view", when, lead_id="L", path="/pricing", event_id=f"r-{n}")
        status = replay.process(accept(real, arrival)).status
        assert status == "counted" or (status == "duplicate" and event_id == f"r-{n}")
