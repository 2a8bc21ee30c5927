"""``leadstream collect``: Segment's HTTP tracking API in front of Kafka, for sites and webhooks.

    python -m stream_app collect      # http://127.0.0.1:8088/v1/batch

``analytics.js``-style snippets, the official Segment libraries (configured
with this host) and webhooks post here: ``/v1/batch``, ``/v1/page``,
``/v1/track``, ``/v1/identify``, ``/v1/alias``, ``/v1/group`` (and
``/v1/screen``), with the write key as Basic auth (user name = key, no
password) or as ``writeKey`` in the body, as the libraries send it. Each
message is written as is (plus ``receivedAt``, and the batch's ``sentAt`` and
``context``) to ``LEADSTREAM_COLLECT_TOPIC`` (default: the first input topic),
keyed like RudderStack keys it (``userId``, else ``anonymousId``), where the
worker reads it as any Segment-spec message: mapped, ignored or dead-lettered
with the reason. ``timestamp`` is kept as the client sent it; the worker dates
a message with ``originalTimestamp`` and ``sentAt`` ``receivedAt - (sentAt -
originalTimestamp)`` (Segment's clock-skew correction), and dead-letters an
event dated more than ``LEADSTREAM_MAX_CLOCK_SKEW_SECONDS`` after ``receivedAt``
(``future_event``; ``codec.ahead_of_arrival``).

The answer is 200 only after the broker acknowledged every message of the
request (``acks=all``); a broker that does not answer in time gives a 503,
which Segment's libraries retry (a retried message has the same
``messageId``, which the worker counts once). Bodies over
``LEADSTREAM_COLLECT_MAX_BODY_BYTES`` (after gzip decompression: aiohttp
inflates ``Content-Encoding: gzip`` bodies, as the libraries' ``gzip`` option
sends them) get a 413, a bad key a 401, a body that
is not Segment-spec JSON a 400, each with ``{"success": false, "code",
"message"}``. A separate process: the query API stays read-only. ``/health``,
``/ready`` (the broker answers) and Prometheus ``/metrics``. Bodies are never
logged (they carry e-mail addresses).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, generate_latest

from schemas.segment import SEGMENT_TYPES
from stream_app.config import Settings
from stream_app.errors import LeadstreamError
from stream_app.kafka import ensure_topics, kafka_options
from stream_app.topics import TopicNames

log = logging.getLogger("leadstream.collect")

#: Segment's own limit for one message.
MAX_MESSAGE_BYTES = 32 * 1024
ACK_TIMEOUT_SECONDS = 15.0
ROUTES = ("batch", *sorted(SEGMENT_TYPES))
OPEN_PATHS = {"/health", "/ready", "/metrics"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class CollectError(LeadstreamError):
    """The collector is not configured (no write key)."""


class Rejected(Exception):
    """A request refused with a status and a reason for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _answer(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"success": False, "code": code, "message": message}, status=status)


def write_key_of(request_auth: str | None, body: dict[str, Any]) -> str | None:
    """The write key from ``Authorization: Basic base64(key:)``, else the body's ``writeKey``."""
    if request_auth and request_auth.startswith("Basic "):
        try:
            decoded = base64.b64decode(request_auth.removeprefix("Basic "), validate=True)
        except (binascii.Error, ValueError):
            return None
        return decoded.decode("utf-8", "replace").partition(":")[0]
    key = body.get("writeKey")
    return key if isinstance(key, str) else None


def messages_of(route: str, body: dict[str, Any], received_at: str) -> list[dict[str, Any]]:
    """The messages of one request, as they go to Kafka (pure; raises ``Rejected``)."""
    if route == "batch":
        batch = body.get("batch")
        if not isinstance(batch, list) or not batch:
            raise Rejected(400, "invalid_request", "a batch needs a non-empty 'batch' list")
    else:
        batch = [{k: v for k, v in body.items() if k != "writeKey"}]
    shared_context = body.get("context") if route == "batch" else None
    out = []
    for n, given in enumerate(batch):
        if not isinstance(given, dict):
            raise Rejected(400, "invalid_request", f"batch[{n}] is not an object")
        message = dict(given)
        kind = message.setdefault("type", route if route != "batch" else None)
        if kind not in SEGMENT_TYPES or route not in ("batch", kind):
            raise Rejected(
                400,
                "invalid_request",
                f"batch[{n}]: type {kind!r} is not one of "
                f"{sorted(SEGMENT_TYPES)} (or not this endpoint's)",
            )
        if isinstance(shared_context, dict) and "context" not in message:
            message["context"] = shared_context
        if "sentAt" not in message and isinstance(body.get("sentAt"), str):
            message["sentAt"] = body["sentAt"]
        message["receivedAt"] = received_at
        message.pop("writeKey", None)
        if len(json.dumps(message)) > MAX_MESSAGE_BYTES:
            raise Rejected(
                400, "message_too_large", f"batch[{n}] is over {MAX_MESSAGE_BYTES // 1024} KB"
            )
        out.append(message)
    return out


def subject_key(message: dict[str, Any]) -> bytes | None:
    """RudderStack's key: ``userId``, else ``anonymousId`` (the worker's partitioning)."""
    for name in ("userId", "anonymousId"):
        value = message.get(name)
        if value not in (None, ""):
            return str(value).encode()
    return None


class Collector:
    def __init__(self, settings: Settings) -> None:
        if settings.collect_write_keys is None:
            raise CollectError(
                "set LEADSTREAM_COLLECT_WRITE_KEYS to the write key(s) your sites and libraries "
                "send (comma-separated); see `collect --help`"
            )
        self.settings = settings
        self.keys = [
            k.strip().encode()
            for k in settings.collect_write_keys.get_secret_value().split(",")
            if k.strip()
        ]
        self.topic = settings.collect_topic or TopicNames.of(settings).inputs[0]
        self.producer: AIOKafkaProducer | None = None
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "leadstream_collect_requests",
            "HTTP requests by status",
            ["status"],
            registry=self.registry,
        )
        self.messages = Counter(
            "leadstream_collect_messages",
            "messages the broker acked",
            ["type"],
            registry=self.registry,
        )

    def key_ok(self, key: str | None) -> bool:
        given = (key or "").encode()
        return any(hmac.compare_digest(given, k) for k in self.keys)

    async def connect(self) -> None:
        """Start the producer, again and again until the broker answers (``/ready`` says)."""
        delay = 0.5
        while self.producer is None:
            producer = AIOKafkaProducer(
                **kafka_options(self.settings), acks="all", enable_idempotence=True, linger_ms=2
            )
            try:
                await ensure_topics(self.settings, [self.topic])
                await producer.start()
            except (KafkaError, OSError) as exc:
                with contextlib.suppress(Exception):
                    await producer.stop()
                log.warning(
                    "Kafka not reachable (%s); retrying in %.1fs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)
                continue
            self.producer = producer
            log.info("collector writing to %s", self.topic)

    async def handle(self, request: web.Request) -> web.Response:
        route = request.match_info["route"]
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            limit = self.settings.collect_max_body_bytes
            return self._count(
                _answer(413, "request_too_large", f"bodies are limited to {limit} bytes")
            )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return self._count(_answer(400, "invalid_json", "the body is not JSON"))
        if not isinstance(body, dict):
            return self._count(_answer(400, "invalid_request", "the body is not a JSON object"))
        if not self.key_ok(write_key_of(request.headers.get("Authorization"), body)):
            return self._count(_answer(401, "unauthorized", "missing or unknown write key"))
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            messages = messages_of(route, body, now)
        except Rejected as exc:
            return self._count(_answer(exc.status, exc.code, exc.message))
        producer = self.producer
        if producer is None:
            return self._count(_answer(503, "unavailable", "the broker is not reachable yet"))
        try:
            futures = [
                await producer.send(self.topic, json.dumps(m).encode(), key=subject_key(m))
                for m in messages
            ]
            await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT_SECONDS)
        except (KafkaError, TimeoutError) as exc:
            log.warning(
                "the broker did not acknowledge %d message(s): %s",
                len(messages),
                type(exc).__name__,
            )
            return self._count(
                _answer(503, "unavailable", "the broker did not acknowledge the messages; retry")
            )
        for m in messages:
            self.messages.labels(type=m["type"]).inc()
        return self._count(web.json_response({"success": True}))

    def _count(self, response: web.Response) -> web.Response:
        self.requests.labels(status=str(response.status)).inc()
        return response

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        producer = self.producer
        if producer is not None:
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(producer.partitions_for(self.topic), 3)
                return web.json_response({"ready": True, "topic": self.topic})
        return web.json_response({"ready": False, "topic": self.topic}, status=503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[cors], client_max_size=self.settings.collect_max_body_bytes
        )
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/v1/{route:(" + "|".join(ROUTES) + ")}", self.handle)
        app.router.add_route("OPTIONS", "/v1/{route}", preflight)
        connecting: list[asyncio.Task[None]] = []

        async def start(app: web.Application) -> None:
            connecting.append(asyncio.create_task(self.connect()))

        async def stop(app: web.Application) -> None:
            for task in connecting:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.producer is not None:
                await self.producer.stop()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)
        return app


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Browsers post from the site's origin: allow it (the write key is public by design)."""
    response = await handler(request)
    response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
    response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


async def preflight(request: web.Request) -> web.Response:
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "86400",
        },
    )


def main(settings: Settings | None = None) -> int:
    from stream_app.logs import configure  # noqa: PLC0415

    settings = settings or Settings()
    configure(settings)
    collector = Collector(settings)
    log.info(
        "collector on http://%s:%d/v1/batch (health /health, readiness /ready)",
        settings.collect_host,
        settings.collect_port,
    )
    web.run_app(collector.app(), host=settings.collect_host, port=settings.collect_port, print=None)
    return 0
