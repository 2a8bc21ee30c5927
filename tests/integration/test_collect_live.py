"""The official Segment library for Python → ``collect`` → Kafka → the worker, on the real stack.

``segment-analytics-python`` (PyPI, written by Segment, not here) is pointed
at a collector process; the Segment-shaped journey it sends gives the
transitions of its native twin, ids included. Around it: the collector's
refusals (bad key, oversized, not JSON, wrong type) and, pointed at a broker
that is not there, a 503 and never a 200.
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
from segment.analytics import Client

from schemas.dead_letter import DeadLetter
from schemas.events import parse_event
from schemas.transitions import StageTransition
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from tests.integration.live import Lockstep, WorkerProcess, collect, worker_on_own_topic
from tests.segment_cases import journey
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
        assert sent.status == 200  # the worker, not the collector, judges the event

    raw = await collect(kafka_bootstrap, [worker.names.transitions], until=len(expected))
    live = [StageTransition.model_validate_json(r) for r in raw]
    assert [t for t in live if t.lead_id.startswith(prefix)] == expected
    raw = await collect(kafka_bootstrap, [worker.names.dead_letters], until=1)
    letters = [DeadLetter.model_validate_json(r) for r in raw]
    assert [(d.reason, d.error) for d in letters] == [
        ("invalid", "segment track: messageId: Field required")
    ]
    async with aiohttp.ClientSession() as http, http.get(f"{collector.url}/metrics") as response:
        text = await response.text()
    assert 'leadstream_collect_messages_total{type="page"} 3.0' in text
    assert 'leadstream_collect_messages_total{type="track"} 4.0' in text
    assert 'leadstream_collect_requests_total{status="200"} 8.0' in text


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


async def test_the_write_key_in_the_body_works_too_and_browsers_may_post(
    collector: Process,
) -> None:
    message = {
        "writeKey": KEY,
        "type": "page",
        "messageId": f"wk-{uuid.uuid4().hex[:6]}",
        "anonymousId": "a-1",
        "timestamp": "2026-11-02T10:00:00Z",
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
            assert response.headers["Access-Control-Allow-Origin"] == "https://example.com"


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
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{dead.url}/v1/page", json=message, headers=basic(KEY)) as response,
        ):
            assert response.status == 503
            assert (await response.json())["code"] == "unavailable"
    finally:
        dead.stop()
