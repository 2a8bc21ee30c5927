"""The read-only query API, served from the Redis projection.

    python -m stream_app api          # http://127.0.0.1:8080/openapi.json

It never talks to Kafka, so it runs and scales apart from the worker. With
``LEADSTREAM_API_TOKEN`` set, every route but ``/health`` and ``/ready``
needs ``Authorization: Bearer <token>``; the dashboard under ``/ui/``
(``stream_app.serve.dashboard``) asks for the same token once and keeps a cookie.
Every error, aiohttp's own included (404, 405, a header over 8,190 bytes), is
``{"error": ...}`` (``stream_app.httpserver``); slow clients are cut off after
``LEADSTREAM_HTTP_HEADER_TIMEOUT_SECONDS`` / ``_BODY_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from schemas.api import (
    Account,
    Error,
    Funnel,
    Funnels,
    Health,
    Lead,
    OpenApiDocument,
    Outcomes,
    Ready,
    TopAccounts,
    TopLeads,
)
from schemas.base import Model
from schemas.transitions import STAGES
from stream_app.config import Settings
from stream_app.httpserver import REFUSED, Runner, json_errors, run
from stream_app.outcomes import drift
from stream_app.scoring.rules import Rules
from stream_app.scoring.spec import FunnelReview
from stream_app.serve.api.openapi import OPENAPI
from stream_app.serve.dashboard import add_dashboard, is_dashboard
from stream_app.serve.stores.client import redis_client
from stream_app.serve.stores.projection import RedisProjection

log = logging.getLogger("leadstream.api")

OPEN_PATHS = {"/health", "/ready"}
MAX_REQUEST_BYTES = 16 * 1024
#: A path parameter that takes the rest of the path, any character: aiohttp's default
#: (``[^{}/]+``) made ids with ``{``, ``}`` or ``/`` unreachable though the worker stores
#: them. The id alphabet itself is ``schemas.base.Id``; anything else is simply not found.
ANY_ID = r"[\s\S]+"
PROJECTION: web.AppKey[RedisProjection] = web.AppKey("projection", RedisProjection)
TOP_N: web.AppKey[int] = web.AppKey("top_n", int)
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)
REVIEW: web.AppKey[FunnelReview] = web.AppKey("review", FunnelReview)
CHALLENGER: web.AppKey[RedisProjection] = web.AppKey("challenger", RedisProjection)
CHALLENGER_NAME: web.AppKey[str] = web.AppKey("challenger_name", str)
OUTCOMES: web.AppKey[Gauge] = web.AppKey("outcomes", Gauge)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Served as built once: the document checked against its own model.
_OPENAPI_BODY = OpenApiDocument.model_validate(OPENAPI).model_dump_json().encode()


def _reply(model: type[Model], body: Any, status: int = 200) -> web.Response:
    """``body`` validated by ``model`` (the document's schema for it), as JSON.

    A body the model refuses raises, and the client gets a 500: the API never
    answers a shape its document does not describe.
    """
    return web.Response(
        body=model.model_validate(body).model_dump_json(),
        status=status,
        content_type="application/json",
    )


def _problem(status: int, detail: str) -> web.Response:
    return _reply(Error, {"error": detail}, status)


def _limit(request: web.Request, default: int = 20) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise web.HTTPBadRequest(
            text=Error(error="limit must be a whole number from 1 to 500").model_dump_json(),
            content_type="application/json",
        )
    return int(raw)


def auth_middleware(token: str | None) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is None or request.path in OPEN_PATHS or is_dashboard(request.path):
            return await handler(request)  # the dashboard has its own gate (a cookie)
        given = request.headers.get("Authorization", "")
        # aiohttp reads header bytes that are not UTF-8 as surrogates: back to the bytes sent
        if not given.startswith("Bearer ") or not hmac.compare_digest(
            given.removeprefix("Bearer ").encode("utf-8", "surrogateescape"), token.encode()
        ):
            return _problem(401, "missing or wrong bearer token")
        return await handler(request)

    return check


async def health(request: web.Request) -> web.Response:
    return _reply(Health, {"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    try:
        await request.app[PROJECTION].redis.ping()
    except Exception as exc:  # any failure to reach Redis means: not ready
        return _problem(503, f"redis unavailable: {type(exc).__name__}")
    return _reply(Ready, {"status": "ready"})


async def lead(request: web.Request) -> web.Response:
    found = await request.app[PROJECTION].lead(request.match_info["lead_id"])
    if found is None:
        return _problem(404, "no such lead")
    return _reply(Lead, found)


async def top_leads(request: web.Request) -> web.Response:
    stage = request.query.get("stage")
    if stage is not None and stage not in STAGES:
        return _problem(400, f"stage must be one of {', '.join(STAGES)}")
    rows = await request.app[PROJECTION].top(stage, _limit(request))
    return _reply(TopLeads, {"stage": stage, "leads": rows})


async def account(request: web.Request) -> web.Response:
    view = await request.app[PROJECTION].account(
        request.match_info["account_id"], request.app[TOP_N]
    )
    if view is None:
        return _problem(404, "no such account")
    return _reply(Account, view)


async def top_accounts(request: web.Request) -> web.Response:
    rows = await request.app[PROJECTION].top_accounts(request.app[TOP_N], _limit(request))
    return _reply(TopAccounts, {"accounts": rows})


async def funnel(request: web.Request) -> web.Response:
    return _reply(Funnel, await request.app[PROJECTION].funnel(request.app[REVIEW]))


async def funnels(request: web.Request) -> web.Response:
    app = request.app
    challenger = app.get(CHALLENGER)
    theirs = None
    if challenger is not None and await challenger.has_leads():
        theirs = await challenger.funnel(app[REVIEW])
    return _reply(
        Funnels,
        {
            "champion": await app[PROJECTION].funnel(app[REVIEW]),
            "challenger": theirs,
            "challenger_name": app[CHALLENGER_NAME],
        },
    )


async def outcomes(request: web.Request) -> web.Response:
    return _reply(Outcomes, await request.app[PROJECTION].outcomes())


async def metrics(request: web.Request) -> web.Response:
    """This process's own figures (each worker serves its own on LEADSTREAM_WORKER_PORT),
    and the drift counts read from the projection when asked."""
    gauge = request.app[OUTCOMES]
    found = await request.app[PROJECTION].outcomes()
    gauge.clear()
    for row in found["bands"]:
        for outcome in drift.OUTCOMES:
            gauge.labels(band=row["band"], outcome=outcome).set(row[outcome])
    return web.Response(body=generate_latest(request.app[REGISTRY]), content_type="text/plain")


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_OPENAPI_BODY, content_type="application/json")


def metrics_middleware(requests: Counter) -> Any:
    """Counts every request by route and status (``leadstream_api_requests_total``)."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            requests.labels(route=name, status=str(exc.status)).inc()
            raise
        requests.labels(route=name, status=str(response.status)).inc()
        return response

    return count


def create_api(
    settings: Settings,
    projection: RedisProjection,
    top_n: int,
    review: FunnelReview | None = None,
    rules: Rules | None = None,
    challenger: RedisProjection | None = None,
    challenger_name: str = "challenger",
) -> web.Application:
    """The API; ``review``: the rules' ``funnel_review`` (``/funnel`` judges the newest MQLs);
    with ``rules``, the dashboard under ``/ui/`` too (``stream_app.serve.dashboard``)."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    registry = CollectorRegistry()
    requests = Counter(
        "leadstream_api_requests",
        "API requests by route and status",
        ["route", "status"],
        registry=registry,
    )
    app = web.Application(
        middlewares=[metrics_middleware(requests), json_errors, auth_middleware(token)],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[REFUSED] = lambda status: requests.labels(route="unparsed", status=str(status)).inc()
    app[OUTCOMES] = Gauge(
        "leadstream_outcomes_90d",
        "sales outcomes in the last 90 days of feedback, by the score band of the hand-off",
        ["band", "outcome"],
        registry=registry,
    )
    if challenger is not None:
        app[CHALLENGER] = challenger
    app[CHALLENGER_NAME] = challenger_name
    app[REGISTRY] = registry
    app[PROJECTION] = projection
    app[TOP_N] = top_n
    app[REVIEW] = review or FunnelReview()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/leads", top_leads)
    app.router.add_get(f"/leads/{{lead_id:{ANY_ID}}}", lead)
    app.router.add_get("/accounts", top_accounts)
    app.router.add_get(f"/accounts/{{account_id:{ANY_ID}}}", account)
    app.router.add_get("/funnel", funnel)
    app.router.add_get("/funnels", funnels)
    app.router.add_get("/outcomes", outcomes)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    if rules is not None:
        theirs = (challenger, challenger_name) if challenger is not None else None
        add_dashboard(app, token, projection, rules, app[REVIEW], top_n, theirs)

    async def close_redis(app: web.Application) -> None:
        await app[PROJECTION].redis.aclose()
        if CHALLENGER in app:
            await app[CHALLENGER].redis.aclose()

    app.on_cleanup.append(close_redis)
    return app


def main(settings: Settings | None = None) -> int:
    from stream_app.logs import configure  # noqa: PLC0415
    from stream_app.rules_file import load_rules  # noqa: PLC0415

    settings = settings or Settings()
    configure(settings)
    rules = load_rules(settings.rules_path)
    spec = rules.spec
    projection = RedisProjection(redis_client(settings), settings.redis_key_prefix)
    challenger = RedisProjection(redis_client(settings), settings.challenger_key_prefix)
    app = create_api(
        settings,
        projection,
        spec.accounts.top_n,
        spec.funnel_review,
        rules,
        challenger=challenger,
        challenger_name=settings.challenger,
    )
    log.info(
        "query API on http://%s:%d/ (OpenAPI at /openapi.json, dashboard at /ui/)",
        settings.api_host,
        settings.api_port,
    )
    runner = Runner(
        app,
        header_timeout=settings.http_header_timeout_seconds,
        body_timeout=settings.http_body_timeout_seconds,
    )
    run(runner, settings.api_host, settings.api_port)
    return 0
