"""The Redis projection on the real Redis: order-safe, idempotent, and what the API reads."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from stream_app.scoring.engine import score_update
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.stores.projection import RedisProjection
from tests.factories import VP_PROFILE, ev

pytestmark = pytest.mark.integration


async def test_updates_apply_once_and_in_version_order(
    redis_client: aioredis.Redis, unique: str, rules: Rules
) -> None:
    prefix = f"ls:test:{unique}:"
    store = RedisProjection(redis_client, prefix)
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
    try:
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
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis_client.delete(*keys)


async def test_a_disqualified_lead_is_not_hot_and_does_not_raise_its_account(
    redis_client: aioredis.Redis, unique: str, rules: Rules
) -> None:
    prefix = f"ls:test:{unique}:"
    store = RedisProjection(redis_client, prefix)
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
    try:
        await store.apply_updates(updates)
        assert [row["lead_id"] for row in await store.top(None, 10)] == ["buyer"]
        account = await store.account("acme.com", top_n=3)
        assert account is not None
        assert account["score"] == 65.0  # the buyer's total alone
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis_client.delete(*keys)


async def test_the_funnel_counts_leads_waiting_for_sales_past_the_sla(
    redis_client: aioredis.Redis, unique: str, rules: Rules
) -> None:
    prefix = f"ls:test:{unique}:"
    store = RedisProjection(redis_client, prefix)
    replay = Replay(rules)
    for event in [
        ev("profile_update", lead_id="L1", **VP_PROFILE),
        ev("form_submission", lead_id="L1", form_kind="demo_request"),
    ]:
        step = replay.process(event)
        assert step.update is not None
        await store.apply_update(step.update)
    try:
        assert (await store.funnel())["sla"] == {"open": 1, "breached": 0}
        now = replay.states["L1"].stage_since + 5 * 3600  # type: ignore[operator]
        assert [x.type for x in replay.sweep_all(now)] == ["sla_breach"]
        await store.apply_update(score_update(replay.states["L1"], rules, now=now))
        assert (await store.funnel())["sla"] == {"open": 0, "breached": 1}
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis_client.delete(*keys)


async def test_the_funnel_judges_the_newest_mqls_as_simulate_does(
    redis_client: aioredis.Redis, unique: str, rules: Rules
) -> None:
    from stream_app.scoring.funnel import funnel

    prefix = f"ls:test:{unique}:"
    store = RedisProjection(redis_client, prefix)
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
    try:
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
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis_client.delete(*keys)


async def test_a_lead_whose_hash_is_gone_is_left_out_of_the_leaderboards(
    redis_client: aioredis.Redis, unique: str, rules: Rules
) -> None:
    prefix = f"ls:test:{unique}:"
    store = RedisProjection(redis_client, prefix)
    replay = Replay(rules)
    for lead in ("L1", "L2"):
        step = replay.process(ev("profile_update", lead_id=lead, **VP_PROFILE))
        assert step.update is not None
        await store.apply_update(step.update)
    try:
        await redis_client.delete(f"{prefix}lead:L2")  # between the zset read and the hash read
        assert [(r["lead_id"], r["stage"]) for r in await store.top(None, 10)] == [("L1", "lead")]
        account = await store.account("acme.com", top_n=3)
        assert account is not None and [r["lead_id"] for r in account["leads"]] == ["L1"]
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*", count=10_000)]
        if keys:
            await redis_client.delete(*keys)
