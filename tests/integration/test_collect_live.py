"""The official Segment library for Python → ``collect`` → Kafka → the worker, on the real stack.

``segment-analytics-python`` (PyPI, written by Segment, not here) is pointed
at a collector process; the Segment-shaped journey it sends gives the
transitions of its native twin, ids included. Around it: the collector's
refusals (bad key, oversized, not JSON, wrong type, what the worker would
dead-letter), hostile input over raw sockets (never a 500, always JSON, every
answer counted), CORS, slow clients and, pointed at a broker that is not
there, a 503 and never a 200.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from segment.analytics import Client

from schemas.events import parse_event
from schemas.transitions import StageTransition
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from tests.integration.live import (
    Lockstep,
    WorkerProcess,
    answer_of,
    collect,
    exchange,
    worker_on_own_topic,
)
from tests.segment_cases import journey, page
from tools.launch import Process, free_port, http_ready, leadstream

pytestmark = pytest.mark.integration

KEY = "wk_test_site"


def basic(user: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def collector_process(tmp: Path, **env: str) -> Process:
    """``python -m stream_app collect`` on a free port of its own (``tools.launch``: ready
    once its /ready answers 200, i.e. the broker answers)."""
    return leadstream(
        "collect",
        log=tmp / f"collect-{uuid.uuid4().hex[:8]}.log",
        env={"LEADSTREAM_COLLECT_WRITE_KEYS": f"old_key,{KEY}", **env},
    )


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    yield from worker_on_own_topic(tmp_path_factory, "site-events")


@pytest.fixture(scope="module")
def collector(worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    process = collector_process(
        tmp_path_factory.mktemp("collect"),
        LEADSTREAM_TOPIC_PREFIX=worker.names.prefix,
        LEADSTREAM_INPUT_TOPICS=worker.env["LEADSTREAM_INPUT_TOPICS"],
    )
    process.start().wait_ready(30)
    yield process
    process.stop()
    text = process.log_text()
    assert "Traceback" not in text, text[-3000:]
    assert KEY not in text and "jane@acme.com" not in text  # secrets and addresses: never


def send_with_the_library(client: Client, message: dict[str, Any]) -> None:
    """One message of the journey through the library's own API, as a site's backend would."""
    common = {
        "message_id": message["messageId"],
        "timestamp": datetime.fromisoformat(message["timestamp"]),
        "anonymous_id": message.get("anonymousId"),
    }
    user = message.get("userId")
    if message["type"] == "page":
        client.page(user, properties=message["properties"], **common)
    elif message["type"] == "identify":
        client.identify(user, traits=message["traits"], **common)
    else:
        client.track(user, message["event"], message["properties"], **common)


async def test_the_segment_library_through_the_collector_gives_the_native_transitions(
    worker: WorkerProcess, collector: Process, kafka_bootstrap: str, rules: Rules
) -> None:
    prefix = uuid.uuid4().hex[:6]
    trip = journey(prefix, "segment")
    replay = Replay(rules)
    expected: list[StageTransition] = []
    for event in trip.native:
        expected += replay.process(parse_event(json.dumps(event))).transitions
    assert [t.to_stage for t in expected] == ["mql", "sql"]

    client = Client(KEY, host=collector.url, sync_mode=True, max_retries=3)
    async with Lockstep(kafka_bootstrap, worker) as feed:
        for message in trip.foreign[: len(trip.native)]:
            await asyncio.to_thread(send_with_the_library, client, message)  # 200 = acked
            await asyncio.wait_for(feed._wait_for(message["messageId"]), 30)
    # the library's usual mode: queued, sent in one gzipped /v1/batch by its thread, on flush
    batching = Client(KEY, host=collector.url, gzip=True)
    await asyncio.to_thread(send_with_the_library, batching, trip.foreign[-2])  # unmapped
    await asyncio.to_thread(batching.flush)
    await asyncio.to_thread(batching.join)
    async with (
        aiohttp.ClientSession() as http,  # the malformed one: no messageId
        http.post(f"{collector.url}/v1/track", json=trip.foreign[-1], headers=basic(KEY)) as sent,
    ):
        # the worker's own decoder judges it in the collector: refused, with the worker's
        # reason and error, instead of accepted and dead-lettered later
        assert sent.status == 400
        answer = await sent.json()
    assert answer["refused"] == [
        {"index": 0, "reason": "invalid", "error": "segment track: messageId: Field required"}
    ]

    raw = await collect(kafka_bootstrap, [worker.names.transitions], until=len(expected))
    live = [StageTransition.model_validate_json(r) for r in raw]
    assert [t for t in live if t.lead_id.startswith(prefix)] == expected
    async with aiohttp.ClientSession() as http, http.get(f"{collector.url}/metrics") as response:
        text = await response.text()
    assert 'leadstream_collect_messages_total{type="page"} 3.0' in text
    assert 'leadstream_collect_messages_total{type="track"} 3.0' in text  # not the refused
    # every answer is counted (/ready's to the launcher too): the refused one as a 400
    assert 'leadstream_collect_requests_total{status="400"} 1.0' in text
    assert 'leadstream_collect_refused_total{reason="invalid"}' in text


@pytest.mark.parametrize(
    ("path", "body", "auth", "status", "code"),
    [
        ("/v1/track", b'{"event": "x"}', ("nope", ""), 401, "unauthorized"),
        ("/v1/track", b'{"event": "x"}', None, 401, "unauthorized"),
        ("/v1/batch", b"not json", (KEY, ""), 400, "invalid_json"),
        ("/v1/batch", b'{"batch": [{"type": "telepathy"}]}', (KEY, ""), 400, "invalid_request"),
        ("/v1/page", b'{"type": "track"}', (KEY, ""), 400, "invalid_request"),
        ("/v1/batch", b'{"batch": []}', (KEY, ""), 400, "invalid_request"),
        (
            "/v1/batch",
            b'{"batch": [{"type": "page", "p": "' + b"x" * 40_000 + b'"}]}',
            (KEY, ""),
            400,
            "message_too_large",
        ),
        ("/v1/batch", b'{"batch": "' + b"x" * 600_000 + b'"}', (KEY, ""), 413, "request_too_large"),
    ],
)
async def test_the_collector_refuses_with_clear_errors(
    collector: Process, path: str, body: bytes, auth: Any, status: int, code: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            collector.url + path, data=body, headers=basic(*auth) if auth else None
        ) as response,
    ):
        assert response.status == status
        answer = await response.json()
    assert (answer["success"], answer["code"]) == (False, code)


def post(path: str, body: bytes, headers: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n{headers}\r\n"
    ).encode() + body


async def metric_values(url: str, name: str) -> dict[str, float]:
    """A collector counter's samples: label value -> value."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    return {
        next(iter(s.labels.values()), ""): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


AUTH = "Authorization: Basic " + base64.b64encode(f"{KEY}:".encode()).decode() + "\r\n"


async def test_a_batch_is_judged_whole_before_any_message_is_produced(
    collector: Process, worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    """A lone surrogate in the middle of a batch used to answer 500 after the messages
    before it were produced (and each retry produced them again)."""
    run = uuid.uuid4().hex[:8]
    batch = [
        page(f"{run}-0"),
        page(f"{run}-1", userId="\ud800"),  # json.dumps writes it as the escape "\ud800"
        page(f"{run}-2", properties={}),  # a page without a path: the worker dead-letters it
        {**page(f"{run}-3", anonymousId="a-2"), "type": "track", "event": "No Rule Reads It"},
        page(f"{run}-4", anonymousId="a-3"),
    ]
    body = json.dumps({"batch": batch}).encode()
    before = await metric_values(collector.url, "leadstream_collect_refused_total")
    for _ in range(2):  # a retry gives the same answer and writes the same messages
        _, raw = await exchange(collector.url, post("/v1/batch", body, AUTH))
        status, _, answer = answer_of(raw)
        assert status == 200, answer
        assert answer["success"] is True
        assert [(r["index"], r["reason"]) for r in answer["refused"]] == [
            (1, "not_json"),
            (2, "invalid"),
        ]
        assert answer["refused"][1]["error"] == "segment page as page_view: path: Field required"
    written = await collect(kafka_bootstrap, [worker.env["LEADSTREAM_INPUT_TOPICS"]], until=1)
    ids = [json.loads(r)["messageId"] for r in written if run.encode() in r]
    assert sorted(ids) == [f"{run}-0", f"{run}-0", f"{run}-3", f"{run}-3", f"{run}-4", f"{run}-4"]
    after = await metric_values(collector.url, "leadstream_collect_refused_total")
    assert after["not_json"] - before.get("not_json", 0) == 2
    assert after["invalid"] - before.get("invalid", 0) == 2

    # nothing the worker would take: 400, and the list of why
    one = json.dumps({"batch": [batch[1]]}).encode()
    status, _, answer = answer_of((await exchange(collector.url, post("/v1/batch", one, AUTH)))[1])
    assert (status, answer["code"], answer["refused"][0]["index"]) == (400, "invalid_messages", 0)


HOSTILE = [
    ("nested", post("/v1/batch", b"[" * 10_000 + b"]" * 10_000, AUTH), 400),
    ("not gzip", post("/v1/batch", b"plain text", AUTH + "Content-Encoding: gzip\r\n"), 400),
    ("surrogate key", post("/v1/page", json.dumps({"writeKey": "\ud800"}).encode()), 401),
    ("no route", b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
    ("wrong method", b"GET /v1/batch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    (
        "long header",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
        400,
    ),
    ("bad method", b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
]


async def test_hostile_input_gets_a_json_4xx_never_a_500_and_every_answer_is_counted(
    collector: Process,
) -> None:
    before = await metric_values(collector.url, "leadstream_collect_requests_total")
    seen = []
    for name, request, expected in HOSTILE:
        _, raw = await exchange(collector.url, request)
        status, headers, answer = answer_of(raw)
        assert (name, status) == (name, expected), answer
        assert answer["success"] is False and answer["error"], (name, answer)
        if expected == 405:
            assert headers["Allow"] == "OPTIONS,POST"
        seen.append(status)
    after = await metric_values(collector.url, "leadstream_collect_requests_total")
    counted = {s: after.get(s, 0) - before.get(s, 0) for s in after}
    assert counted.get("500", 0) == 0
    for status in set(seen):
        assert counted[str(status)] == seen.count(status), (status, counted)


async def test_the_write_key_in_the_body_works_too_and_browsers_may_post(
    collector: Process,
) -> None:
    message = {
        "writeKey": KEY,
        "type": "page",
        "messageId": f"wk-{uuid.uuid4().hex[:6]}",
        "anonymousId": "a-1",
        "timestamp": "2026-11-02T10:00:00Z",
        "properties": {"path": "/"},
    }
    async with aiohttp.ClientSession() as http:
        async with http.options(
            f"{collector.url}/v1/page", headers={"Origin": "https://example.com"}
        ) as response:
            assert response.status == 204
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        # the README's snippet: text/plain and the key in the body (no preflight needed)
        async with http.post(
            f"{collector.url}/v1/page",
            data=json.dumps(message),
            headers={"Origin": "https://example.com", "Content-Type": "text/plain"},
        ) as response:
            assert response.status == 200
            # any page may post (the default), never with credentials; the answer varies
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "Access-Control-Allow-Credentials" not in response.headers
            assert response.headers["Vary"] == "Origin"
        for path in ("/metrics", "/ready", "/health"):  # CORS on the tracking routes only
            async with http.get(f"{collector.url}{path}", headers={"Origin": "null"}) as response:
                assert "Access-Control-Allow-Origin" not in response.headers, path
                assert "Access-Control-Allow-Credentials" not in response.headers, path


@pytest.fixture(scope="module")
def strict_collector(
    worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A collector that lets one site post, and gives slow clients one second."""
    process = collector_process(
        tmp_path_factory.mktemp("strict"),
        LEADSTREAM_TOPIC_PREFIX=worker.names.prefix,
        LEADSTREAM_INPUT_TOPICS=worker.env["LEADSTREAM_INPUT_TOPICS"],
        LEADSTREAM_COLLECT_CORS_ORIGINS="https://shop.example.com",
        LEADSTREAM_HTTP_HEADER_TIMEOUT_SECONDS="1",
        LEADSTREAM_HTTP_BODY_TIMEOUT_SECONDS="1",
    )
    process.start().wait_ready(30)
    yield process
    process.stop()
    assert "Traceback" not in process.log_text()


async def test_an_allow_list_lets_its_origins_post_and_refuses_the_others(
    strict_collector: Process,
) -> None:
    body = json.dumps({**page(f"cors-{uuid.uuid4().hex[:6]}"), "writeKey": KEY}).encode()
    async with aiohttp.ClientSession() as http:
        shop = {"Origin": "https://shop.example.com", "Content-Type": "text/plain"}
        async with http.post(f"{strict_collector.url}/v1/page", data=body, headers=shop) as sent:
            assert sent.status == 200
            assert sent.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
            assert sent.headers["Vary"] == "Origin"
        for origin in ("https://evil.example", "null"):
            other = {"Origin": origin, "Content-Type": "text/plain"}
            async with http.post(
                f"{strict_collector.url}/v1/page", data=body, headers=other
            ) as sent:
                assert sent.status == 403
                assert (await sent.json())["code"] == "origin_not_allowed"
                assert "Access-Control-Allow-Origin" not in sent.headers
            async with http.options(f"{strict_collector.url}/v1/page", headers=other) as sent:
                assert sent.status == 403


async def test_slow_clients_are_cut_off(strict_collector: Process) -> None:
    """Headers or a body trickled in: the connection used to be held for as long as the
    client liked (aiohttp's run_app: 75 s of headers; a body: no bound at all)."""
    # headers that never end: closed after LEADSTREAM_HTTP_HEADER_TIMEOUT_SECONDS
    took, raw = await exchange(strict_collector.url, b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n")
    assert raw == b"" and took < 5, took
    # a body that never comes: 408 after LEADSTREAM_HTTP_BODY_TIMEOUT_SECONDS
    start = b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
    took, raw = await exchange(strict_collector.url, start)
    status, _, answer = answer_of(raw)
    assert (status, answer["code"]) == (408, "request_timeout")
    assert took < 5, took


async def test_without_a_broker_the_collector_answers_503_never_200(tmp_path: Path) -> None:
    dead = collector_process(tmp_path, LEADSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    dead.ready = http_ready(f"{dead.url}/health")  # it can never be ready: alive is the wait
    dead.start().wait_ready(30)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{dead.url}/ready") as response:
            assert response.status == 503
        message = {
            "type": "page",
            "messageId": "m",
            "anonymousId": "a",
            "timestamp": "2026-11-02T10:00:00Z",
            "properties": {"path": "/"},
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{dead.url}/v1/page", json=message, headers=basic(KEY)) as response,
        ):
            assert response.status == 503
            assert (await response.json())["code"] == "unavailable"
    finally:
        dead.stop()
