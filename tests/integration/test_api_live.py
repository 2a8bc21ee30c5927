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
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.serve.api.openapi import OPENAPI
from stream_app.serve.stores.projection import RedisProjection
from tests.integration.live import answer_of, exchange
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


@pytest.fixture
async def strict_api(
    redis_client: aioredis.Redis, unique: str, tmp_path: Path
) -> AsyncIterator[str]:
    """The API over an empty projection, giving slow clients one second."""
    api = leadstream(
        "api",
        log=tmp_path / "api.log",
        env={
            "LEADSTREAM_REDIS_KEY_PREFIX": f"ls:test:{unique}:",
            "LEADSTREAM_API_TOKEN": TOKEN,
            "LEADSTREAM_HTTP_HEADER_TIMEOUT_SECONDS": "1",
            "LEADSTREAM_HTTP_BODY_TIMEOUT_SECONDS": "1",
        },
    )
    try:
        await api.start().wait_ready_async(30)
        yield api.url
    finally:
        api.stop()
    log = (tmp_path / "api.log").read_text()
    assert "Traceback" not in log and TOKEN not in log, log[-3000:]


def get(path: str, *headers: bytes) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(headers) + b"\r\n"


async def test_malformed_requests_get_a_json_4xx_and_slow_clients_are_cut_off(
    strict_api: str,
) -> None:
    """A token header that is not UTF-8 used to answer 500; aiohttp's own 404, 405 and
    parser refusals were text/plain; trickled headers held the connection."""
    bearer = f"Authorization: Bearer {TOKEN}\r\n".encode()
    cases = [
        (get("/leads", b"Authorization: Bearer \xff\xfe\x80\r\n", b"Connection: close\r\n"), 401),
        (get("/nope", bearer, b"Connection: close\r\n"), 404),
        (b"POST /leads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + bearer + b"\r\n", 405),
        (get("/health", b"X-Long: " + b"a" * 9000 + b"\r\n"), 400),
        (b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ]
    before = await answered(strict_api)
    for request, expected in cases:
        _, raw = await exchange(strict_api, request)
        status, headers, body = answer_of(raw)
        assert (status, sorted(body)) == (expected, ["error"]), (request[:40], raw[:300])
        if status == 405:
            assert "GET" in headers["Allow"]
    counted = await answered(strict_api)
    assert counted[("unparsed", "400")] - before.get(("unparsed", "400"), 0) == 2
    assert not [k for k in counted if k[1] == "500"], counted

    took, raw = await exchange(strict_api, b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never ends
    assert raw == b"" and took < 5, took
    # a body nobody reads: answered at once, then drained for a second, then closed
    took, raw = await exchange(strict_api, get("/health", b"Content-Length: 1000\r\n") + b"{")
    assert answer_of(raw)[0] == 200 and took < 5, took
