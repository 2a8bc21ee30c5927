"""schemathesis against the live query API: every answer is what /openapi.json says.

``python -m stream_app api`` runs as its own process over the real Redis, on a
projection the projector's code path fills (``apply_updates`` /
``add_transitions``) from generated traffic scored by the core. schemathesis
(PyPI, not written here) reads the served document, generates requests (valid
and invalid parameters; real lead and account ids it captures from earlier answers)
and checks each answer: no 5xx, a documented status, the documented content
type, a body the status's schema accepts. Once with the bearer token, once
without (then everything but /health and /ready must be a documented 401).
Deterministic mode (no random seed, no example database), bounded examples.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from schemas.events import EVENT_ADAPTER
from stream_app.api.openapi import OPENAPI
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.stores.projection import RedisProjection
from tools.launch import leadstream
from tools.traffic import generate

pytestmark = pytest.mark.integration

TOKEN = "live-api-t0ken"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPEN = {"/health", "/ready"}


async def fill(projection: RedisProjection, rules: Rules, id_prefix: str) -> None:
    """What the projector writes for 150 generated prospects (leads in several stages)."""
    replay = Replay(rules)
    updates, transitions = [], []
    for raw in generate(150, seed=5, id_prefix=id_prefix):
        step = replay.process(EVENT_ADAPTER.validate_python(raw))
        if step.update is not None:
            updates.append(step.update)
        transitions += step.transitions
    await projection.apply_updates(updates)
    await projection.add_transitions(transitions)


@pytest.fixture
async def api_url(
    redis_client: aioredis.Redis, unique: str, rules: Rules, tmp_path: Path
) -> AsyncIterator[str]:
    prefix = f"ls:test:{unique}:"
    await fill(RedisProjection(redis_client, prefix), rules, f"{unique}g")
    # tools.launch: a free port of its own, ready once /ready answers 200 (it reaches Redis)
    api = leadstream(
        "api",
        log=tmp_path / "api.log",
        env={"LEADSTREAM_REDIS_KEY_PREFIX": prefix, "LEADSTREAM_API_TOKEN": TOKEN},
    )
    try:
        await api.start().wait_ready_async(30)
        yield api.url
    finally:
        api.stop()
        # count: the shared Redis holds other runs' keys too; 10 a round trip takes seconds
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*", count=10_000)]
        if keys:
            await redis_client.delete(*keys)


async def schemathesis(url: str, document: str, cwd: Path, *headers: str) -> tuple[int, str]:
    """``schemathesis run`` (its CLI) with ``document`` against ``url``; exit code and output.

    ``document``: the served one's URL, or a file of it (it too needs the token);
    ``cwd``: where schemathesis keeps its crash cache (``.schemathesis/``).
    """
    base = () if document.startswith("http") else ("--url", url)
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "run", document, *base),
        *("--checks", CHECKS),
        *("--phases", "examples,coverage,fuzzing"),  # stateful: the document has no links
        *("--max-examples", "20", "--generation-deterministic", "--workers", "1"),
        *("--request-timeout", "10", "--no-color"),
        *(arg for header in headers for arg in ("--header", header)),
    ]
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(errors="replace")


async def answered(url: str) -> dict[tuple[str, str], float]:
    """The API's own count of requests before this one: (route, status) -> how many."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/metrics", headers=AUTH) as response,
    ):
        text = await response.text()
    return {
        (sample.labels["route"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "leadstream_api_requests_total"
    }


async def statuses(url: str, since: dict[tuple[str, str], float]) -> dict[str, set[str]]:
    """route -> the statuses it answered after the ``since`` count (and its own request)."""
    now = await answered(url)
    now[("/metrics", "200")] -= 1  # the request that read ``since``
    seen: dict[str, set[str]] = {}
    for (route, status), n in now.items():
        if n > since.get((route, status), 0):
            seen.setdefault(route, set()).add(status)
    return seen


async def test_every_answer_is_what_the_document_says(api_url: str, tmp_path: Path) -> None:
    before = await answered(api_url)
    code, out = await schemathesis(
        api_url, f"{api_url}/openapi.json", tmp_path, f"Authorization: Bearer {TOKEN}"
    )
    assert code == 0, out
    assert re.search(r"(\d+) generated, \1 passed", out), out
    seen = await statuses(api_url, before)
    for route in OPENAPI["paths"]:  # each route answered real data, lead and account included
        assert "200" in seen.get(route, set()), (route, seen)
    assert "500" not in {status for answered in seen.values() for status in answered}, seen


async def test_without_the_token_every_answer_is_still_documented(
    api_url: str, tmp_path: Path
) -> None:
    document = tmp_path / "openapi.json"
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{api_url}/openapi.json", headers=AUTH) as response,
    ):
        document.write_bytes(await response.read())
    before = await answered(api_url)
    code, out = await schemathesis(api_url, str(document), tmp_path)
    assert code == 0, out
    assert re.search(r"(\d+) generated, \1 passed", out), out
    seen = await statuses(api_url, before)
    for route in set(OPENAPI["paths"]) - OPEN:
        assert seen.get(route) == {"401"}, (route, seen)
    for route in OPEN:
        assert "200" in seen[route], (route, seen)
