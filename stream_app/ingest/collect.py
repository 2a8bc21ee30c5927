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

Every message of a request is encoded and judged by the worker's own decoder
(``codec.decode``, with ``LEADSTREAM_TRACKS_PATH``) before any is produced: one
the worker would dead-letter is refused here instead (a ``page`` without a
path, no ``messageId``, a lone UTF-16 surrogate in an id), listed in the
answer's ``refused`` (index, reason, error) and counted
(``leadstream_collect_refused_total``); the rest are produced (mapped or
ignored, as the worker will). No refusal can come after a message was
produced, so an answer never misstates what was written.

The answer is 200 only after the broker acknowledged every accepted message
(``acks=all``); 400 when no message was accepted; a broker that does not
answer in time gives a 503, which Segment's libraries retry (a retried message
has the same ``messageId``, which the worker counts once). Bodies over
``LEADSTREAM_COLLECT_MAX_BODY_BYTES`` (after gzip decompression: aiohttp
inflates ``Content-Encoding: gzip`` bodies, as the libraries' ``gzip`` option
sends them) get a 413, a body slower than ``LEADSTREAM_HTTP_BODY_TIMEOUT_SECONDS``
a 408, a bad key a 401, a page of an origin not in
``LEADSTREAM_COLLECT_CORS_ORIGINS`` a 403, a body that is not Segment-spec JSON
(or not gzip as it says) a 400, each with ``{"success": false, "code",
"message", "error"}`` (Segment's shape, which its libraries read, and the
``error`` every Leadstream server answers with). Every answer is counted
(``leadstream_collect_requests_total``). A separate process: the query API
stays read-only. ``/health``, ``/ready`` (the broker answers) and Prometheus
``/metrics``, without CORS. Bodies are never logged (they carry e-mail
addresses). The CRMs' webhooks (``/v1/webhooks/hubspot``,
``/v1/webhooks/salesforce``) become ``sales_feedback`` events:
``stream_app.ingest.crm_webhooks``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, generate_latest

from schemas.base import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from schemas.dead_letter import DeadLetter
from schemas.segment import SEGMENT_TYPES
from stream_app.codec import decode
from stream_app.config import Settings
from stream_app.errors import LeadstreamError
from stream_app.httpserver import ERROR_BODY, REFUSED, Runner, json_errors, run
from stream_app.ingest.tracks import Tracks, load_tracks
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


#: The ``code`` of an error answer aiohttp or a middleware words (Segment's style).
CODES = {
    400: "invalid_request",
    403: "origin_not_allowed",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    500: "internal_error",
}


def _answer(status: int, code: str, message: str, **more: Any) -> web.Response:
    body = {"success": False, "code": code, "message": message, "error": message, **more}
    return web.json_response(body, status=status)


def error_body(status: int, message: str) -> web.Response:
    """The collector's words for an error it did not foresee (404, 405, a parser's 400)."""
    return _answer(status, CODES.get(status, "error"), message)


def write_key_of(request_auth: str | None, body: dict[str, Any]) -> str | None:
    """The write key from ``Authorization: Basic base64(key:)``, else the body's ``writeKey``."""
    if request_auth and request_auth.startswith("Basic "):
        try:
            decoded = base64.b64decode(request_auth.removeprefix("Basic "), validate=True)
        except (binascii.Error, ValueError):
            return None
        return decoded.decode("utf-8", "replace").partition(":")[0]
    key = body.get("writeKey")
    if not isinstance(key, str):
        return None
    try:
        key.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800" in the JSON): no key of ours
        return None
    return key


def messages_of(
    route: str,
    body: dict[str, Any],
    received_at: str,
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
) -> list[dict[str, Any]]:
    """The messages of one request, as they go to Kafka (pure; raises ``Rejected``).

    The collector stands where Segment's API does, so it does what that API does with
    a sender's clock (``skew_corrected``) before the worker sees the message."""
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
        skew_corrected(message, max_clock_skew)
        message.pop("writeKey", None)
        if len(json.dumps(message)) > MAX_MESSAGE_BYTES:
            raise Rejected(
                400, "message_too_large", f"batch[{n}] is over {MAX_MESSAGE_BYTES // 1024} KB"
            )
        out.append(message)
    return out


def skew_corrected(message: dict[str, Any], max_clock_skew: float) -> None:
    """A sender whose clock is off: its ``timestamp`` becomes ``originalTimestamp``.

    Segment's libraries date a message (``timestamp``) and a batch (``sentAt``) by the
    same device clock. When ``sentAt`` is further than ``max_clock_skew`` seconds from
    our ``receivedAt``, that clock is wrong (a visitor's laptop a day ahead, a phone in
    2099): the ``timestamp`` is kept as ``originalTimestamp``, and the worker dates the
    event ``receivedAt - (sentAt - originalTimestamp)``, Segment's own correction
    (``segment.event_time``), instead of refusing it as dated in the future. A clock
    within the allowance keeps its ``timestamp`` as sent: correcting it would move the
    event by the network's delay and nothing more. A message that already names its
    ``originalTimestamp`` is corrected by the worker as it is.
    """
    stamp, sent = message.get("timestamp"), message.get("sentAt")
    if "originalTimestamp" in message or not isinstance(stamp, str) or not isinstance(sent, str):
        return
    try:
        offset = parse_time(sent) - parse_time(message["receivedAt"])
    except ValueError:
        return  # the worker's decoder judges a time it cannot read
    if abs(offset.total_seconds()) > max_clock_skew:
        message["originalTimestamp"] = message.pop("timestamp")


def parse_time(text: str) -> datetime:
    """An ISO-8601 time as Segment's libraries write it (``Z`` or an offset), in UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time without its zone")
    return moment


@dataclass(frozen=True)
class Refusal:
    """A message the worker would dead-letter: its index in the request, the dead
    letter's reason and error."""

    index: int
    reason: str
    error: str


@dataclass(frozen=True)
class Judged:
    """A request's messages as they go to Kafka (message, value, key), and the refused."""

    accepted: list[tuple[dict[str, Any], bytes, bytes | None]]
    refused: list[Refusal]


def judge(
    messages: list[dict[str, Any]],
    tracks: Tracks,
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
) -> Judged:
    """Encode every message and judge the bytes with the worker's decoder (pure): a
    message it would dead-letter is refused; mapped and ignored ones are accepted."""
    accepted, refused = [], []
    for n, message in enumerate(messages):
        value = json.dumps(message).encode()  # ASCII: a lone surrogate stays escaped
        verdict = decode(value, tracks=tracks, max_clock_skew=max_clock_skew)
        if isinstance(verdict, DeadLetter):
            refused.append(Refusal(n, verdict.reason, verdict.error))
            continue
        try:
            key = subject_key(message)
        except UnicodeEncodeError:  # the decoder refuses these first; kept for the key
            refused.append(Refusal(n, "not_utf8", "userId or anonymousId is not Unicode text"))
            continue
        accepted.append((message, value, key))
    return Judged(accepted, refused)


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
        self.tracks = load_tracks(settings.tracks_path)
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
        self.refused = Counter(
            "leadstream_collect_refused",
            "messages refused because the worker would dead-letter them, by reason",
            ["reason"],
            registry=self.registry,
        )
        from stream_app.ingest.crm_webhooks import CrmWebhooks  # noqa: PLC0415

        self.webhooks = CrmWebhooks(self)

    def key_ok(self, key: str | None) -> bool:
        given = (key or "").encode()
        return any(hmac.compare_digest(given, k) for k in self.keys)

    def counted(self, status: int) -> None:
        self.requests.labels(status=str(status)).inc()

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
            async with asyncio.timeout(self.settings.http_body_timeout_seconds):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            limit = self.settings.collect_max_body_bytes
            return _answer(413, "request_too_large", f"bodies are limited to {limit} bytes")
        except TimeoutError:
            timeout = self.settings.http_body_timeout_seconds
            response = _answer(408, "request_timeout", f"the body took over {timeout:g} s")
            response.force_close()
            return response
        except web.RequestPayloadError:  # e.g. Content-Encoding: gzip on a body that is not
            # the rest is unreadable: not drained after the answer (aiohttp would log the
            # same error again as "Unhandled exception"), the connection closed instead
            request.content.feed_eof()
            response = _answer(400, "invalid_body", "the body is not what its headers say")
            response.force_close()
            return response
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _answer(400, "invalid_json", "the body is not JSON")
        except RecursionError:
            return _answer(400, "invalid_json", "the body is nested too deep")
        if not isinstance(body, dict):
            return _answer(400, "invalid_request", "the body is not a JSON object")
        if not self.key_ok(write_key_of(request.headers.get("Authorization"), body)):
            return _answer(401, "unauthorized", "missing or unknown write key")
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            skew = self.settings.max_clock_skew_seconds
            judged = judge(messages_of(route, body, now, skew), self.tracks, skew)
        except Rejected as exc:
            return _answer(exc.status, exc.code, exc.message)
        refused = [vars(r) for r in judged.refused]
        if judged.refused:
            reasons = Tally(r.reason for r in judged.refused)
            for reason, n in reasons.items():
                self.refused.labels(reason=reason).inc(n)
            log.info("refused %d message(s): %s", len(refused), dict(reasons))
        if not judged.accepted:
            why = "the worker would dead-letter every message"
            return _answer(400, "invalid_messages", why, refused=refused)
        producer = self.producer
        if producer is None:
            return _answer(503, "unavailable", "the broker is not reachable yet")
        try:
            futures = [
                await producer.send(self.topic, value, key=key) for _, value, key in judged.accepted
            ]
            await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT_SECONDS)
        except (KafkaError, TimeoutError) as exc:
            log.warning(
                "the broker did not acknowledge %d message(s): %s",
                len(judged.accepted),
                type(exc).__name__,
            )
            return _answer(503, "unavailable", "the broker did not acknowledge the messages; retry")
        for message, _, _ in judged.accepted:
            self.messages.labels(type=message["type"]).inc()
        if refused:
            return web.json_response({"success": True, "refused": refused})
        return web.json_response({"success": True})

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
            middlewares=[
                count_answers(self.counted),
                cors(self.settings.collect_cors_origins),
                json_errors,
            ],
            client_max_size=self.settings.collect_max_body_bytes,
        )
        app[ERROR_BODY] = error_body
        app[REFUSED] = self.counted
        tracking = "/v1/{route:(" + "|".join(ROUTES) + ")}"
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post(tracking, self.handle)
        app.router.add_route("OPTIONS", tracking, preflight)
        self.webhooks.routes(app)
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


def count_answers(count: Callable[[int], None]) -> Any:
    """Counts every answer the application gives, by status (the outermost middleware)."""

    @web.middleware
    async def counting(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            count(exc.status)
            raise
        count(response.status)
        return response

    return counting


def allowed_origin(origin: str | None, allowed: tuple[str, ...]) -> tuple[bool, str | None]:
    """Whether a request from ``origin`` may post, and the ``Access-Control-Allow-Origin``
    it gets (pure). No ``Origin``: not a browser's cross-origin request (a server-side
    library), no header needed. ``*``: any page, ``null`` included, answered ``*``: a
    browser then sends no credentials and the answer holds nothing private. Otherwise
    the origin itself when listed (``null`` only if listed too)."""
    if origin is None:
        return True, None
    if "*" in allowed:
        return True, "*"
    if origin in allowed:
        return True, origin
    return False, None


def cors(allowed: tuple[str, ...]) -> Any:
    """Browsers post from a site's page: CORS on the tracking routes only (never on
    /metrics or /ready), without credentials (the write key is in a header or the
    body, never a cookie), ``Vary: Origin`` (the answer depends on it)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if "route" not in request.match_info:  # not a tracking route
            return await handler(request)
        ok, allow = allowed_origin(request.headers.get("Origin"), allowed)
        if ok:
            response = await handler(request)
        else:
            response = _answer(403, "origin_not_allowed", "this origin may not post here")
        response.headers["Vary"] = "Origin"
        if allow is not None:
            response.headers["Access-Control-Allow-Origin"] = allow
        return response

    return middleware


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
    runner = Runner(
        collector.app(),
        header_timeout=settings.http_header_timeout_seconds,
        body_timeout=settings.http_body_timeout_seconds,
    )
    run(runner, settings.collect_host, settings.collect_port)
    return 0
