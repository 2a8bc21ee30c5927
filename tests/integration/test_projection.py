"""The Redis projection on the real Redis: order-safe, idempotent, and what the API reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from schemas.transitions import SlaBreach
from stream_app.scoring.engine import advance, score_update
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import DAY, LeadState
from stream_app.serve.stores.projection import RedisProjection
from tests.factories import VP_PROFILE, ev

pytestmark = pytest.mark.integration


@pytest.fixture
async def prefix(redis_client: aioredis.Redis, unique: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    name = f"ls:test:{unique}:"
    yield name
    keys = [k async for k in redis_client.scan_iter(match=f"{name}*", count=10_000)]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture
def store(redis_client: aioredis.Redis, prefix: str) -> RedisProjection:
    return RedisProjection(redis_client, prefix)


async def test_updates_apply_once_and_in_version_order(
    store: RedisProjection, rules: Rules
) -> None:
    replay = Replay(rules)
    updates = []
    transitions = []
    for event in [
        ev("profile_update", lead_id="L1", source="google", **VP_PROFILE),
        ev("page_view", hours=1, lead_id="L1", path="/pricing"),
        ev("form_submission", day=2, lead_id="L1", form_kind="demo_request"),
        ev("profile_update", lead_id="L2", email="b@gmail.com", account_id="acme.com"),
    ]:
        step = replay.process(event)
        assert step.update is not None
        updates.append(step.update)
        transitions += step.transitions
    # newest first, then everything again: stale and repeated updates change nothing
    for update in reversed(updates):
        await store.apply_update(update)
    assert [await store.apply_update(u) for u in updates] == [False] * 4
    for t in transitions + transitions:
        await store.add_transition(t)

    lead = await store.lead("L1")
    assert lead is not None
    assert (lead["stage"], lead["version"]) == ("sql", 3)
    assert [t["to_stage"] for t in lead["recent_transitions"]] == ["sql", "mql"]
    top = await store.top(None, 10)
    assert [row["lead_id"] for row in top] == ["L1", "L2"]
    assert (await store.top("sql", 10))[0]["lead_id"] == "L1"
    account = await store.account("acme.com", top_n=3)
    assert account is not None
    assert account["score"] == pytest.approx(updates[2].scores.total)
    funnel = await store.funnel()
    assert funnel["stages"]["sql"] == 1 and funnel["stages"]["lead"] == 1
    assert (funnel["reached_mql"], funnel["reached_sql"]) == (1, 1)
    assert funnel["mql_to_sql_rate"] == 1.0
    assert funnel["by_source"]["google"] == {"leads": 1, "reached_mql": 1, "reached_sql": 1}
    assert funnel["sla"] == {"open": 1, "breached": 0}  # L1, an SQL nobody picked up yet
    # the final state equals a fresh projection of the last update alone
    assert lead["scores"] == score_update(replay.states["L1"], rules).scores.model_dump()


async def test_a_disqualified_lead_is_not_hot_and_does_not_raise_its_account(
    store: RedisProjection, rules: Rules
) -> None:
    replay = Replay(rules)
    spy = {**VP_PROFILE, "email": "spy@rivalsoft.com"}  # acme.com's account, a competitor
    updates = []
    for event in [
        ev("profile_update", lead_id="buyer", **VP_PROFILE),
        ev("page_view", hours=1, lead_id="buyer", path="/pricing"),
        ev("page_view", lead_id="spy", path="/pricing"),
        ev("profile_update", hours=1, lead_id="spy", **spy),
    ]:
        step = replay.process(event)
        assert step.update is not None
        updates.append(step.update)
    await store.apply_updates(updates)
    assert [row["lead_id"] for row in await store.top(None, 10)] == ["buyer"]
    account = await store.account("acme.com", top_n=3)
    assert account is not None
    assert account["score"] == 65.0  # the buyer's total alone


async def test_the_funnel_counts_leads_waiting_for_sales_past_the_sla(
    store: RedisProjection, rules: Rules
) -> None:
    replay = Replay(rules)
    for event in [
        ev("profile_update", lead_id="L1", **VP_PROFILE),
        ev("form_submission", lead_id="L1", form_kind="demo_request"),
    ]:
        step = replay.process(event)
        assert step.update is not None
        await store.apply_update(step.update)
    assert (await store.funnel())["sla"] == {"open": 1, "breached": 0}
    now = replay.states["L1"].stage_since + 5 * 3600  # type: ignore[operator]
    assert [x.type for x in replay.sweep_all(now)] == ["sla_breach"]
    await store.apply_update(score_update(replay.states["L1"], rules, now=now))
    assert (await store.funnel())["sla"] == {"open": 0, "breached": 1}


async def test_the_funnel_judges_the_newest_mqls_as_simulate_does(
    store: RedisProjection, rules: Rules
) -> None:
    from stream_app.scoring.funnel import funnel

    replay = Replay(rules)
    updates = {}
    for i in range(25):  # 25 MQLs, 3 of which ask for a demo: 12 %
        lead = f"L{i:02}"
        events = [
            ev("profile_update", hours=i / 10, lead_id=lead, **VP_PROFILE),
            ev("page_view", hours=i / 10, lead_id=lead, path="/pricing"),
        ]
        if i < 3:
            events.append(ev("form_submission", hours=3, lead_id=lead, form_kind="demo_request"))
        for event in events:
            step = replay.process(event)
            assert step.update is not None
            updates[lead] = step.update
    await store.apply_updates(list(updates.values()))
    review = rules.spec.funnel_review
    got = (await store.funnel(review))["mql_review"]
    expected = funnel(replay.leads(), rules).review
    assert expected is not None and expected.needs_review
    assert got == {
        "last_mqls": 25,
        "mql_to_sql_rate": expected.mql_to_sql_rate,
        "min_mql_to_sql": 0.2,
        "needs_review": True,
        "message": expected.line(),
    }


async def test_a_lead_whose_hash_is_gone_is_left_out_of_the_leaderboards(
    redis_client: aioredis.Redis, prefix: str, store: RedisProjection, rules: Rules
) -> None:
    replay = Replay(rules)
    for lead in ("L1", "L2"):
        step = replay.process(ev("profile_update", lead_id=lead, **VP_PROFILE))
        assert step.update is not None
        await store.apply_update(step.update)
    await redis_client.delete(f"{prefix}lead:L2")  # between the zset read and the hash read
    assert [(r["lead_id"], r["stage"]) for r in await store.top(None, 10)] == [("L1", "lead")]
    account = await store.account("acme.com", top_n=3)
    assert account is not None and [r["lead_id"] for r in account["leads"]] == ["L1"]


async def mentions(client: aioredis.Redis, prefix: str, ids: set[str]) -> list[str]:
    """Every key under ``prefix`` whose name or members name one of ``ids``."""
    found = []
    async for raw in client.scan_iter(match=f"{prefix}*"):
        key = raw.decode()
        kind = (await client.type(key)).decode()
        if kind == "set":
            members = await client.smembers(key)
        elif kind == "zset":
            members = await client.zrange(key, 0, -1)
        elif kind == "hash":
            members = list((await client.hgetall(key)).values())
        elif kind == "stream":
            members = [v for _, fields in await client.xrange(key) for v in fields.values()]
        else:
            members = [await client.get(key)]
        text = key + " " + " ".join(m.decode(errors="replace") for m in members if m)
        found += [f"{key}: {i}" for i in ids if i in text]
    return found


def breaches_of(state: LeadState, rules: Rules) -> list[SlaBreach]:
    """The SLA breaches the sweep finds for a lead left alone for a year."""
    return list(advance(state, rules, (state.newest_at or 0.0) + 365 * DAY).breaches)


async def test_recent_breaches_are_kept_once_the_latest_first_and_bounded(
    store: RedisProjection, rules: Rules
) -> None:
    from stream_app.serve.stores.projection import BREACHES_KEPT

    replay = Replay(rules)
    replay.process(ev("profile_update", lead_id="w", **VP_PROFILE))
    replay.process(ev("form_submission", hours=1, lead_id="w", form_kind="demo_request"))
    (breach,) = breaches_of(replay.states["w"], rules)
    await store.add_breaches([breach])
    await store.add_breaches([breach])  # re-sent after a crash: stored once
    assert await store.recent_breaches(10) == [breach.model_dump(mode="json")]
    later = [
        breach.model_copy(
            update={
                "breach_id": f"b{n}",
                "occurred_at": breach.occurred_at + n * timedelta(hours=1),
            }
        )
        for n in range(1, BREACHES_KEPT + 3)
    ]
    await store.add_breaches(later)
    recent = await store.recent_breaches(BREACHES_KEPT + 10)
    assert len(recent) == BREACHES_KEPT
    assert recent[0]["breach_id"] == f"b{BREACHES_KEPT + 2}"  # the latest deadline first


async def test_an_erased_lead_leaves_every_key_and_index(
    redis_client: aioredis.Redis, prefix: str, store: RedisProjection, rules: Rules
) -> None:
    replay = Replay(rules)
    updates, transitions = [], []
    for event in [
        ev("page_view", lead_id="gone-1", path="/pricing", campaign="spring"),
        # first touch moves earlier: the lead moves from one source's sets to another's
        ev("page_view", day=-1, lead_id="gone-1", path="/blog/a", source="google"),
        ev("profile_update", hours=1, lead_id="gone-1", source="linkedin", **VP_PROFILE),
        ev("form_submission", day=2, lead_id="gone-1", form_kind="demo_request"),
        ev("profile_update", lead_id="kept-2", source="google", **VP_PROFILE),
    ]:
        step = replay.process(event)
        assert step.update is not None
        updates.append(step.update)
        transitions += step.transitions
    for update in updates:  # one at a time: every intermediate index entry is made
        await store.apply_update(update)
    await store.add_transitions(transitions)
    breaches = breaches_of(replay.states["gone-1"], rules)
    assert breaches and {b.lead_id for b in breaches} == {"gone-1"}
    breaches.append(breaches[0].model_copy(update={"lead_id": "kept-2", "breach_id": "k2"}))
    await store.add_breaches(breaches)
    assert await mentions(redis_client, prefix, {"gone-1"})
    assert await redis_client.zcard(f"{prefix}lead:gone-1:scores") == 4  # its chart's points
    cell = (await redis_client.hget(f"{prefix}lead:gone-1", "cell")).decode()
    assert await redis_client.sismember(f"{prefix}cell:{cell}", "gone-1")
    assert await redis_client.xlen(f"{prefix}feed") == len(transitions)
    kept_before = await store.lead("kept-2")
    await store.erase(["gone-1", "never-seen"])
    assert await mentions(redis_client, prefix, {"gone-1"}) == []
    assert await store.lead("gone-1") is None
    assert await store.lead("kept-2") == kept_before  # the other lead is untouched
    funnel = await store.funnel()
    assert funnel["leads"] == 1 and funnel["reached_mql"] == 0
    assert set(funnel["by_source"]) == {"google"} and funnel["by_campaign"] == {
        "(none)": {"leads": 1, "reached_mql": 0, "reached_sql": 0}
    }
    assert await store.account("acme.com", top_n=3) is not None  # kept-2's account
    assert {b["lead_id"] for b in await store.recent_breaches(10)} == {"kept-2"}
    # a new life after the erasure starts at version 1 and is applied
    fresh = Replay(rules).process(ev("page_view", day=9, lead_id="gone-1", path="/x"))
    assert fresh.update is not None and fresh.update.version == 1
    assert await store.apply_update(fresh.update)


def _attribution_events() -> list:  # type: ignore[type-arg]
    """Leads whose first touch moves back and takes source and campaign with it.

    L1 is first seen without a source and reaches MQL under "(none)"; a late
    page view from an hour before, from google / q4, becomes its first touch.
    L2's first touch moves from linkedin / webinar to an earlier newsletter /
    spring. L3 stays without a source.
    """
    return [
        ev("page_view", day=1, lead_id="L1", path="/pricing"),
        ev("profile_update", day=1, hours=1, lead_id="L1", **VP_PROFILE),
        ev("page_view", day=1, hours=-1, lead_id="L1", path="/", source="google", campaign="q4"),
        ev("page_view", day=1, lead_id="L2", path="/", source="linkedin", campaign="webinar"),
        ev("page_view", hours=1, lead_id="L2", path="/", source="newsletter", campaign="spring"),
        ev("page_view", lead_id="L3", path="/"),
    ]


EXPECTED_BY_SOURCE = {
    "(none)": {"leads": 1, "reached_mql": 0, "reached_sql": 0},
    "google": {"leads": 1, "reached_mql": 1, "reached_sql": 0},
    "newsletter": {"leads": 1, "reached_mql": 0, "reached_sql": 0},
}
EXPECTED_BY_CAMPAIGN = {
    "(none)": {"leads": 1, "reached_mql": 0, "reached_sql": 0},
    "q4": {"leads": 1, "reached_mql": 1, "reached_sql": 0},
    "spring": {"leads": 1, "reached_mql": 0, "reached_sql": 0},
}


async def test_a_lead_is_counted_once_under_its_current_source_and_campaign(
    redis_client: aioredis.Redis, prefix: str, store: RedisProjection, rules: Rules
) -> None:
    from stream_app.scoring.funnel import funnel

    replay = Replay(rules)
    updates = []
    for event in _attribution_events():
        step = replay.process(event)
        assert step.update is not None
        updates.append(step.update)
        assert await store.apply_update(step.update)  # one at a time, as the worker sends
    assert [(u.lead_id, u.source) for u in updates if u.lead_id != "L3"] == [
        ("L1", None),
        ("L1", None),
        ("L1", "google"),
        ("L2", "linkedin"),
        ("L2", "newsletter"),
    ]
    assert updates[1].mql_at is not None  # L1 reached MQL while it had no source

    got = await store.funnel()
    assert got["by_source"] == EXPECTED_BY_SOURCE
    assert got["by_campaign"] == EXPECTED_BY_CAMPAIGN
    expected = funnel(replay.leads())
    assert {k: list(v.__dict__.values()) for k, v in expected.by_source.items()} == {
        k: list(v.values()) for k, v in got["by_source"].items()
    }
    assert got["median_days_to_mql"] == pytest.approx(expected.median_days_to_mql, abs=1e-4)
    # the sets behind them: nothing is left under the old values, nor the values themselves
    for key in ("source:(none):mql", "source:linkedin:leads", "campaign:webinar:leads"):
        assert await redis_client.scard(prefix + key) == 0, key
    assert await redis_client.smembers(prefix + "sources") == {
        b"(none)",
        b"google",
        b"newsletter",
    }

    # older versions, again and in reverse, change nothing (nor move a lead back)
    assert [await store.apply_update(u) for u in reversed(updates)] == [False] * len(updates)
    await store.apply_updates(updates)
    again = await store.funnel()
    assert (again["by_source"], again["by_campaign"]) == (
        EXPECTED_BY_SOURCE,
        EXPECTED_BY_CAMPAIGN,
    )


async def test_a_projection_written_by_the_old_script_is_repaired_in_place(
    redis_client: aioredis.Redis, prefix: str, store: RedisProjection, rules: Rules
) -> None:
    replay = Replay(rules)
    updates = [replay.process(e).update for e in _attribution_events()]
    for update in updates:
        assert update is not None
        await store.apply_update(update)
    # What the script before this fix left: hashes without source and campaign,
    # and every lead still under the values it had before.
    for lead in ("L1", "L2", "L3"):
        await redis_client.hdel(f"{prefix}lead:{lead}", "source", "campaign")
    for key in ("source:(none)", "campaign:(none)"):
        await redis_client.sadd(f"{prefix}{key}:leads", "L1")
        await redis_client.sadd(f"{prefix}{key}:mql", "L1")
    await redis_client.sadd(f"{prefix}source:linkedin:leads", "L2")
    await redis_client.sadd(f"{prefix}campaign:webinar:leads", "L2")
    await redis_client.sadd(f"{prefix}sources", "linkedin")
    await redis_client.sadd(f"{prefix}campaigns", "webinar")
    stale = await store.funnel()
    assert stale["by_source"]["(none)"] == {"leads": 2, "reached_mql": 1, "reached_sql": 0}

    assert await store.repair_attribution(batch=1) == {"source": 3, "campaign": 3}
    got = await store.funnel()
    assert (got["by_source"], got["by_campaign"]) == (EXPECTED_BY_SOURCE, EXPECTED_BY_CAMPAIGN)
    assert await store.repair_attribution() == {"source": 0, "campaign": 0}

    # a hash without the fields still moves its lead when its attribution changes
    later = replay.process(
        ev("page_view", hours=-1, lead_id="L3", path="/", source="linkedin", campaign="c")
    ).update
    assert later is not None and later.source == "linkedin"
    assert await store.apply_update(later)
    moved = await store.funnel()
    assert moved["by_source"]["linkedin"] == {"leads": 1, "reached_mql": 0, "reached_sql": 0}
    assert "(none)" not in moved["by_source"] and "(none)" not in moved["by_campaign"]


async def test_a_leads_score_history_and_the_feed_stay_bounded(
    redis_client: aioredis.Redis, prefix: str, store: RedisProjection, rules: Rules
) -> None:
    from stream_app.serve.stores.projection import FEED_KEPT, SCORES_KEPT

    replay = Replay(rules)
    for n in range(SCORES_KEPT + 5):
        step = replay.process(ev("page_view", hours=n, lead_id="busy", path=f"/blog/{n}"))
        assert step.update is not None
        await store.apply_update(step.update)
    points = await redis_client.zrange(f"{prefix}lead:busy:scores", 0, -1, withscores=True)
    assert len(points) == SCORES_KEPT
    assert points[0][1] == 6 and points[-1][1] == SCORES_KEPT + 5  # the newest versions
    replay = Replay(rules)
    replay.process(ev("profile_update", lead_id="f", **VP_PROFILE))
    step = replay.process(ev("form_submission", hours=1, lead_id="f", form_kind="demo_request"))
    assert step.transitions
    for _ in range(FEED_KEPT + 3):
        await store.add_transitions(step.transitions[:1])
    assert await redis_client.xlen(f"{prefix}feed") == FEED_KEPT


async def test_top_accounts_ranks_each_account_by_its_own_score(
    redis_client: aioredis.Redis, prefix: str, store: RedisProjection, rules: Rules
) -> None:
    replay = Replay(rules)
    events = [
        ev("profile_update", lead_id=f"a{n}", **{**VP_PROFILE, "account_id": f"acc{n % 3}.com"})
        for n in range(7)
    ] + [
        ev("page_view", hours=1, lead_id="a0", path="/pricing"),
        ev("page_view", hours=2, lead_id="a4", path="/product"),
        ev("profile_update", hours=3, lead_id="a1", email="kid@uni.edu"),  # disqualified
    ]
    for event in events:
        step = replay.process(event)
        assert step.update is not None
        await store.apply_update(step.update)
    await redis_client.delete(f"{prefix}lead:a6")  # a hash gone between two reads
    assert (await store.lead("a1") or {}).get("stage") == "disqualified"

    async def one_by_one(top_n: int) -> list[dict[str, object]]:
        views = [await store.account(f"acc{n}.com", top_n=top_n) for n in range(3)]
        return sorted(
            ({"account_id": v["account_id"], "score": v["score"]} for v in views if v),
            key=lambda v: (-v["score"], v["account_id"]),
        )

    assert await store.top_accounts(2, 10, chunk=2) == await one_by_one(2)
    assert await store.top_accounts(2, 1) == (await one_by_one(2))[:1]
    # a kept score is scored again when one of the account's leads changes ...
    step = replay.process(ev("page_view", hours=4, lead_id="a3", path="/pricing"))
    assert step.update is not None
    await store.apply_update(step.update)
    assert await store.top_accounts(2, 10) == await one_by_one(2)
    # ... or leaves, or when top-N changes (a rules reload)
    await store.erase(["a0", "a3"])
    assert await store.top_accounts(2, 10) == await one_by_one(2)
    assert await store.top_accounts(1, 10) == await one_by_one(1)
    assert await redis_client.scard(f"{prefix}accounts:dirty") == 0


async def test_each_rules_stamp_is_noted_when_its_first_update_is_stored(
    store: RedisProjection, rules: Rules
) -> None:
    replay = Replay(rules)
    step = replay.process(ev("page_view", lead_id="L1", path="/pricing"))
    assert step.update is not None
    old = step.update
    new = old.model_copy(update={"rules_version": "v2-abc", "version": old.version + 1})
    assert await store.rules_seen() == []
    await store.apply_updates([old], now=100.0)
    await store.apply_updates([new], now=200.0)
    await store.apply_updates([old, new], now=300.0)  # seen before: the first time stays
    assert await store.rules_seen() == [("v2-abc", 200.0), (rules.stamp, 100.0)]
