"""The dashboard in a real browser, against the real stack.

A worker (with its projector child) and ``python -m stream_app api`` run on
uuid-unique topics and Redis prefix, with a token; a scripted journey goes
through Kafka; Playwright for Python drives Debian's chromium by its path
(``tools/browser.py``; Playwright never downloads a browser). A missing
browser, broker or Redis is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from stream_app.config import Settings
from stream_app.serve.dashboard.gate import COOKIE
from tests.integration.live import WorkerProcess
from tools.browser import FLAGS, chromium_path
from tools.devstack import kafka_answers
from tools.launch import Process, leadstream
from tools.traffic import generate

pytestmark = pytest.mark.integration

T = TypeVar("T")
TOKEN = "cockpit-t0ken"
VP = {
    "job_title": "VP Marketing",
    "department": "marketing",
    "company_size": 400,
    "country": "US",
}


@dataclass
class Cockpit:
    """The running stack: where the API is, its worker, and the journey's named leads."""

    url: str
    worker: WorkerProcess
    api: Process
    run: str
    redis_prefix: str

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def lead_id(self, name: str) -> str:
        return f"{self.run}-{name}"


def event(kind: str, lead_id: str, minutes: float, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": f"e-{uuid.uuid4().hex[:12]}",
        "occurred_at": f"2026-11-02T{9 + int(minutes // 60):02d}:{int(minutes % 60):02d}:00+00:00",
        "lead_id": lead_id,
        **fields,
    }


def hand_raiser(lead_id: str, account: str) -> list[dict[str, Any]]:
    """A VP who reads the pricing page and asks for a demo: SQL at once, as a hand-raise."""
    return [
        event("profile_update", lead_id, 0, email=f"{lead_id}@{account}", account_id=account, **VP),
        event("page_view", lead_id, 5, path="/pricing", source="google", campaign="q4"),
        event("form_submission", lead_id, 10, form_kind="demo_request"),
    ]


def journey(run: str) -> list[dict[str, Any]]:
    """Generated prospects (every stage, several sources) and two scripted hand-raisers."""
    events = list(generate(60, seed=27, id_prefix=f"{run}g"))
    events += hand_raiser(f"{run}-hand", f"{run}-acme.com")
    events += hand_raiser(f"{run}-colleague", f"{run}-acme.com")[:2]  # same account, no form
    return events


def in_thread(call: Callable[[], T]) -> T:
    """``call()`` in a thread of its own: Playwright's sync API keeps an event loop running
    in this one, so ``asyncio.run`` (the producer, the broker probe) cannot run here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def produce(worker: WorkerProcess, events: list[dict[str, Any]], bootstrap: str) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for e in events:
                key = (e.get("lead_id") or e.get("anonymous_id") or "").encode()
                topic = worker.names.input_for(e["type"])
                await producer.send(topic, key=key, value=json.dumps(e).encode())
            await producer.flush()
        finally:
            await producer.stop()

    in_thread(lambda: asyncio.run(send()))


def settled(cockpit: Cockpit, quiet_s: float = 4, limit_s: float = 120) -> dict[str, Any]:
    """``/funnel`` once it has not changed for ``quiet_s`` (the worker took everything)."""
    deadline = time.monotonic() + limit_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = cockpit.get("/funnel")
        if now != last:
            last, since = now, time.monotonic()
        elif now["leads"] and time.monotonic() - since >= quiet_s:
            return now
        time.sleep(0.5)
    raise AssertionError(f"the projection did not settle within {limit_s}s: {last}")


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.fail("no chromium: run `make browser` (python -m tools browser installs Debian's)")
    return path


@pytest.fixture(scope="session")
def cockpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cockpit]:
    settings = Settings()
    port = int(settings.kafka_bootstrap.split(",")[0].rpartition(":")[2])
    if not in_thread(lambda: kafka_answers(port)):
        pytest.fail(f"Kafka does not answer at {settings.kafka_bootstrap}: run `make stack-up`")
    run = uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp("cockpit")
    worker = WorkerProcess(run, tmp)
    prefix = worker.env["LEADSTREAM_REDIS_KEY_PREFIX"]
    api = leadstream(
        "api",
        log=tmp / "api.log",
        env={"LEADSTREAM_REDIS_KEY_PREFIX": prefix, "LEADSTREAM_API_TOKEN": TOKEN},
    )
    worker.start()
    try:
        api.start().wait_ready(30)
        cockpit = Cockpit(api.url or "", worker, api, run, prefix)
        produce(worker, journey(run), settings.kafka_bootstrap)
        settled(cockpit)
        yield cockpit
    finally:
        api.stop()
        worker.stop()
        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
        if keys:
            client.delete(*keys)
        client.close()
    assert "Traceback" not in api.log_text(), api.log_text()[-4000:]
    assert "Traceback" not in worker.log_text(), worker.log_text()[-4000:]
    assert TOKEN not in api.log_text(), "the API logged the token"


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """One chromium per module: Playwright's sync API runs an event loop of its own in this
    thread while it is open, and an async test after it (pytest-asyncio) could not run."""
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=list(FLAGS))
        yield launched
        launched.close()


def signed_in(browser: Browser, cockpit: Cockpit, **options: Any) -> BrowserContext:
    """A browser context that signed in once through the dashboard's form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, **options)
    page = context.new_page()
    page.goto(f"{cockpit.url}/ui/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{cockpit.url}/ui/")
    assert any(c["name"] == COOKIE for c in context.cookies())
    page.close()
    return context


@pytest.fixture
def page(browser: Browser, cockpit: Cockpit) -> Iterator[Page]:
    context = signed_in(browser, cockpit)
    opened = context.new_page()
    yield opened
    context.close()


SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
