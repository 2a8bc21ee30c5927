"""Drift in the Redis projection: outcomes per hand-off band, the last 90 days, erased with
the lead (the real Redis)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.serve.stores.projection import RedisProjection
from tests.factories import VP_PROFILE, ev

pytestmark = pytest.mark.integration


async def test_outcomes_count_under_the_hand_off_band_and_leave_with_an_erasure(
    redis_client: aioredis.Redis, unique: str, rules: Rules
) -> None:
    prefix = f"ls:test:{unique}:"
    projection = RedisProjection(redis_client, prefix)
    replay = Replay(rules)
    events = [
        ev("profile_update", lead_id="hot", **VP_PROFILE),
        ev("page_view", hours=1, lead_id="hot", path="/pricing"),  # MQL at 65
        ev("form_submission", hours=2, lead_id="hot", form_kind="demo_request"),  # SQL at 95
        ev("profile_update", lead_id="cold", **VP_PROFILE),
        ev("page_view", hours=1, lead_id="cold", path="/pricing"),  # MQL at 65
        ev("sales_feedback", day=20, lead_id="hot", outcome="won"),
        ev("sales_feedback", day=21, lead_id="cold", outcome="lost", reason="budget"),
        ev("sales_feedback", day=200, lead_id="old", outcome="won"),  # never handed over
    ]
    try:
        for event in events:
            step = replay.process(event)
            if step.update is not None:
                await projection.apply_update(step.update)
            await projection.add_transitions(list(step.transitions))
        found = await projection.outcomes()
        bands = {row["band"]: row for row in found["bands"]}
        assert set(bands) == {"60-80", "80-100"}, found
        assert (bands["80-100"]["won"], bands["60-80"]["lost"]) == (1, 1)
        assert bands["80-100"]["win_rate"] == 1.0 and bands["60-80"]["win_rate"] == 0.0
        assert found["window_days"] == 90 and found["until"] is not None
        await projection.erase(["hot"])
        after = {row["band"] for row in (await projection.outcomes())["bands"]}
        assert after == {"60-80"}
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis_client.delete(*keys)
