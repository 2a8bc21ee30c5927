"""The query API against the real Redis: answers match the projection, errors are clear."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from stream_app.config import Settings
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.serve.api.app import create_api
from stream_app.serve.api.openapi import OPENAPI
from stream_app.serve.stores.projection import RedisProjection
from tests.factories import VP_PROFILE, ev

pytestmark = pytest.mark.integration
TOKEN = "t0ken-for-tests"


@pytest.fixture
async def api(
    redis_client: aioredis.Redis, unique: str, rules: Rules, settings: Settings
) -> AsyncIterator[TestClient]:
    prefix = f"ls:test:{unique}:"
    projection = RedisProjection(redis_client, prefix)
    replay = Replay(rules)
    for event in [
        ev("profile_update", lead_id="L1", campaign="q4", **VP_PROFILE),
        ev("page_view", hours=1, lead_id="L1", path="/pricing"),
        ev("profile_update", lead_id="L2", email="b@acme.com", account_id="acme.com"),
    ]:
        step = replay.process(event)
        assert step.update is not None
        await projection.apply_update(step.update)
        for transition in step.transitions:
            await projection.add_transition(transition)
    app = create_api(settings.model_copy(update={"api_token": SecretStr(TOKEN)}), projection, 3)
    app.on_cleanup.clear()  # the fixture's client is closed by its own fixture
    async with TestClient(TestServer(app)) as client:
        yield client
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
    await redis_client.delete(*keys)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_health_and_readiness_are_open_everything_else_needs_the_token(
    api: TestClient,
) -> None:
    assert (await api.get("/health")).status == 200
    assert (await api.get("/ready")).status == 200
    assert (await api.get("/leads/L1")).status == 401
    wrong = await api.get("/leads/L1", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401


async def test_lead_top_account_and_funnel(api: TestClient) -> None:
    lead = await (await api.get("/leads/L1", headers=AUTH)).json()
    assert (lead["stage"], lead["scores"]["total"]) == ("mql", 65.0)
    assert {c["rule"] for c in lead["contributions"]} >= {"pricing_page", "senior_title"}
    assert [t["to_stage"] for t in lead["recent_transitions"]] == ["mql"]

    top = await (await api.get("/leads?stage=mql&limit=5", headers=AUTH)).json()
    assert [row["lead_id"] for row in top["leads"]] == ["L1"]
    account = await (await api.get("/accounts/acme.com", headers=AUTH)).json()
    assert {row["lead_id"] for row in account["leads"]} == {"L1", "L2"}
    funnel = await (await api.get("/funnel", headers=AUTH)).json()
    assert funnel["stages"]["mql"] == 1
    assert funnel["by_campaign"]["q4"] == {"leads": 1, "reached_mql": 1, "reached_sql": 0}
    metrics = await (await api.get("/metrics", headers=AUTH)).text()
    assert 'leadstream_api_requests_total{route="/funnel",status="200"} 1.0' in metrics
    assert 'leadstream_api_requests_total{route="/leads/{lead_id}",status="200"} 1.0' in metrics


async def test_bad_requests_say_what_is_wrong(api: TestClient) -> None:
    missing = await api.get("/leads/nobody", headers=AUTH)
    assert (missing.status, await missing.json()) == (404, {"error": "no such lead"})
    bad_stage = await api.get("/leads?stage=hot", headers=AUTH)
    assert bad_stage.status == 400 and "stage must be one of" in (await bad_stage.json())["error"]
    assert (await api.get("/leads?limit=0", headers=AUTH)).status == 400
    huge = await api.post("/leads", data=b"x" * 100_000, headers=AUTH)
    assert huge.status in (405, 413)


async def test_openapi_describes_every_route(api: TestClient) -> None:
    served = await (await api.get("/openapi.json", headers=AUTH)).json()
    assert served == OPENAPI
    routes = {r.resource.canonical for r in api.app.router.routes() if r.method == "GET"}
    assert routes == set(OPENAPI["paths"])


async def test_funnels_without_a_challenger_and_outcomes_before_any_feedback(
    api: TestClient,
) -> None:
    funnels = await (await api.get("/funnels", headers=AUTH)).json()
    assert funnels["challenger"] is None and funnels["challenger_name"] == "challenger"
    assert funnels["champion"] == await (await api.get("/funnel", headers=AUTH)).json()
    outcomes = await (await api.get("/outcomes", headers=AUTH)).json()
    assert outcomes == {"window_days": 90, "until": None, "bands": []}
