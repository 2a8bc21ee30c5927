"""The cockpit: a read-only dashboard over the Redis projection, served by the query API.

    python -m stream_app api          # then open http://127.0.0.1:8080/ui/

Same process, port and token as the JSON API (``add_dashboard`` registers
its routes on the API's application). Pages are rendered on the server as
HTML with inline SVG charts; the only script is ``static/live.js``, which
follows the live feed (``live.py``). Nothing is fetched from elsewhere: the
stylesheet and the script ship in this package.

Pages (all under ``/ui``): ``/`` call first, ``/funnel``, ``/leads`` (filters,
the fit x engagement grid, the score distribution), ``/lead?id=``,
``/accounts``, ``/account?id=``, ``/sla``, ``/rules``; ``/feed`` is the event
stream, ``/login`` the sign-in form when a token is set (``gate.py``). Lead
and account ids travel as a query parameter, so any id (``/``, ``{``, ``}``)
reaches its page.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import web

from schemas.transitions import STAGES
from stream_app.rules_file import load_rules
from stream_app.scoring.rules import Rules
from stream_app.scoring.spec import FunnelReview
from stream_app.serve.dashboard import lead_page, pages
from stream_app.serve.dashboard.gate import Gate, form
from stream_app.serve.dashboard.html import PREFIX, Html, page, when
from stream_app.serve.dashboard.live import stream
from stream_app.serve.dashboard.queries import Reads
from stream_app.serve.stores.projection import RedisProjection

__all__ = ["PREFIX", "add_dashboard", "is_dashboard"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = {"dashboard.css": "text/css", "live.js": "text/javascript"}
LIST_LIMIT = 50
CALL_FIRST = 15


def is_dashboard(path: str) -> bool:
    """Whether the dashboard's own gate judges this path (not the API's bearer check)."""
    return path == PREFIX or path.startswith(f"{PREFIX}/")


class RulesInForce:
    """The rules file as this process read it; read again when the file changes."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.read_at = time.time()
        self.mtime = self._mtime()

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.rules.source).st_mtime
        except OSError:
            return None

    def current(self) -> Rules:
        mtime = self._mtime()
        if mtime is not None and mtime != self.mtime:
            try:
                self.rules = load_rules(Path(self.rules.source))
            except Exception:  # a broken file: the worker refuses it too; keep showing the last
                return self.rules
            self.read_at, self.mtime = time.time(), mtime
        return self.rules


class Dashboard:
    def __init__(
        self,
        projection: RedisProjection,
        rules: Rules,
        review: FunnelReview,
        top_n: int,
        challenger: tuple[RedisProjection, str] | None = None,
    ) -> None:
        self.projection = projection
        self.challenger = challenger
        self.reads = Reads(projection)
        self.rules = RulesInForce(rules)
        self.review = review
        self.top_n = top_n
        self.closing = asyncio.Event()
        self.static = {
            name: (files("stream_app.serve.dashboard").joinpath("static", name).read_bytes(), kind)
            for name, kind in STATIC.items()
        }

    @staticmethod
    def html(title: str, current: str, body: str, *, live: bool = False) -> web.Response:
        return web.Response(
            text=page(title, f"{PREFIX}{current}", body, live=live),
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'self'; style-src 'self'; "
                "script-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            },
        )

    def sla_hours(self) -> dict[str, float]:
        return {str(k): v for k, v in self.rules.current().spec.stages.sla_hours.items()}

    async def overview(self, request: web.Request) -> web.Response:
        late, late_rows = await self.reads.waiting("breached", CALL_FIRST)
        on_time, on_time_rows = await self.reads.waiting("open", CALL_FIRST)
        waiting = (late_rows + on_time_rows)[:CALL_FIRST]
        hottest = await self.reads.hottest(limit=10)
        ids = [r["lead_id"] for r in waiting + hottest]
        body = pages.overview(
            late + on_time,
            waiting,
            hottest,
            await self.reads.last_transitions(ids),
            await self.reads.feed(20),
            self.sla_hours(),
        )
        return self.html("Call first", "/", body, live=True)

    async def funnel(self, request: web.Request) -> web.Response:
        data = await self.projection.funnel(self.review)
        body = pages.funnel(data, await self.reads.weekly())
        if self.challenger is not None and await self.challenger[0].has_leads():
            theirs = await self.challenger[0].funnel(self.review)
            body = Html(pages.side_by_side(data, theirs, self.challenger[1]) + body)
        return self.html("Funnel", "/funnel", body)

    async def leads(self, request: web.Request) -> web.Response:
        q = request.query
        grades = [g.grade for g in self.rules.current().spec.fit.grades]
        filters = {k: q.get(k) or None for k in ("stage", "grade", "account", "source", "cell")}
        if filters["stage"] not in (None, *STAGES) or filters["grade"] not in (None, *grades):
            raise web.HTTPBadRequest(text="unknown stage or grade")
        if (
            filters["cell"]
            and not filters["account"]
            and not filters["stage"]
            and not filters["source"]
        ):
            rows = await self.reads.cell_leads(filters["cell"], LIST_LIMIT)
        else:
            rows = await self.reads.hottest(
                stage=filters["stage"],
                grade=filters["grade"],
                cell=filters["cell"],
                account=filters["account"],
                source=filters["source"],
                limit=LIST_LIMIT,
            )
        sources = sorted(
            v.decode() for v in await self.projection.redis.smembers(f"{self.projection.p}sources")
        )
        body = pages.leads(
            rows,
            await self.reads.last_transitions([r["lead_id"] for r in rows]),
            await self.reads.grid(grades),
            grades,
            await self.reads.score_distribution(),
            filters,
            {"stage": list(STAGES), "grade": grades, "source": sources},
        )
        return self.html("Leads", "/leads", body)

    async def lead(self, request: web.Request) -> web.Response:
        lead_id = request.query.get("id", "")
        data = await self.projection.lead(lead_id)
        if data is None:
            return web.Response(
                text=page("No such lead", "", "<p>The projection holds no lead with this id.</p>"),
                status=404,
                content_type="text/html",
            )
        account = (
            await self.projection.account(data["account_id"], self.top_n)
            if data.get("account_id")
            else None
        )
        body = lead_page.lead(
            data, await self.reads.history(lead_id), account, self.rules.current()
        )
        return self.html(f"Lead {lead_id}", "/leads", body)

    async def accounts(self, request: web.Request) -> web.Response:
        rows = await self.projection.top_accounts(self.top_n, LIST_LIMIT)
        return self.html("Accounts", "/accounts", pages.accounts(rows, self.top_n))

    async def account(self, request: web.Request) -> web.Response:
        account_id = request.query.get("id", "")
        view = await self.projection.account(account_id, self.top_n)
        if view is None:
            return web.Response(
                text=page("No such account", "", "<p>The projection holds no such account.</p>"),
                status=404,
                content_type="text/html",
            )
        ids = [r["lead_id"] for r in view["leads"]][:LIST_LIMIT]
        details = await self.reads.leads(ids)
        body = pages.account(view, details, await self.reads.last_transitions(ids))
        return self.html(f"Account {account_id}", "/accounts", body)

    async def sla(self, request: web.Request) -> web.Response:
        body = pages.sla(
            await self.reads.waiting("open", LIST_LIMIT),
            await self.reads.waiting("breached", LIST_LIMIT),
            await self.projection.recent_breaches(20),
            self.sla_hours(),
        )
        return self.html("Sales SLA", "/sla", body)

    async def rules_page(self, request: web.Request) -> web.Response:
        rules = self.rules.current()
        newest: dict[str, str] = {}
        for _, t in await self.reads.feed(200):
            newest.setdefault(t["rules_version"], t["occurred_at"])
        modified = when(self.rules.mtime) if self.rules.mtime else "unknown"
        body = pages.rules(
            rules,
            when(datetime.fromtimestamp(self.rules.read_at, UTC)),
            modified,
            await self.projection.rules_seen(),
            newest,
        )
        return self.html("Rules in force", "/rules", body)

    async def feed(self, request: web.Request) -> web.StreamResponse:
        return await stream(request, self.reads, self.closing)

    async def asset(self, request: web.Request) -> web.Response:
        found = self.static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, kind = found
        return web.Response(body=body, content_type=kind, headers={"Cache-Control": "max-age=300"})


def gate_middleware(gate: Gate) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_dashboard(request.path) or gate.allows(request):
            return await handler(request)
        if request.path == f"{PREFIX}/feed" or request.path.startswith(f"{PREFIX}/static/"):
            return web.Response(status=401, text="sign in first")
        return form(401)

    return check


def add_dashboard(
    app: web.Application,
    token: str | None,
    projection: RedisProjection,
    rules: Rules,
    review: FunnelReview,
    top_n: int,
    challenger: tuple[RedisProjection, str] | None = None,
) -> None:
    """Register the dashboard's routes and its gate on the API's application; with a
    ``challenger`` (its projection, its name) the funnel page shows both funnels."""
    board = Dashboard(projection, rules, review, top_n, challenger)
    gate = Gate(token)
    app.middlewares.append(gate_middleware(gate))

    async def close_feeds(app: web.Application) -> None:
        board.closing.set()

    app.on_shutdown.append(close_feeds)
    add = app.router.add_get
    add(f"{PREFIX}/", board.overview)
    add(f"{PREFIX}/funnel", board.funnel)
    add(f"{PREFIX}/leads", board.leads)
    add(f"{PREFIX}/lead", board.lead)
    add(f"{PREFIX}/accounts", board.accounts)
    add(f"{PREFIX}/account", board.account)
    add(f"{PREFIX}/sla", board.sla)
    add(f"{PREFIX}/rules", board.rules_page)
    add(f"{PREFIX}/feed", board.feed)
    add(f"{PREFIX}/static/{{name}}", board.asset)
    app.router.add_route("*", f"{PREFIX}/login", gate.login)
