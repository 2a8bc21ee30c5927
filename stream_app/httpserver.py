"""What the collector, the query API and the worker's HTTP share: JSON errors and read timeouts.

**Errors.** aiohttp words some answers itself, in ``text/plain``: the router's
404 and 405 (raised as ``HTTPException``, so a middleware can reword them:
``json_errors``), a handler's unexpected exception (a 500), and, before any
middleware runs, whatever its HTTP parser refuses: a request line or header
over 8,190 bytes ("Got more than 8190 bytes"), a bad method, a bad chunk.
Those last ones are answered by ``RequestHandler.handle_error`` on the
connection (aiohttp's ``web_protocol.py``; aio-libs/aiohttp#3287 asks for an
application hook, open since 2018), which also logs the parser's message, and
that message quotes the offending line (a header's value: a token or a write
key). ``Runner`` serves an application over connections whose
``handle_error`` answers with the application's own error body and logs only
the kind of error. Each application words its errors once (``ERROR_BODY``;
default ``{"error": ...}``) and may count the answers no handler saw
(``REFUSED``).

**Slow clients.** aiohttp closes a connection that has not sent a whole
request line and headers ``keepalive_timeout`` seconds after it opened (or
after its last answer): that is the header timeout, and also how long an idle
keep-alive connection stays open. A body is read by the handler, with no
bound of aiohttp's own: a handler that reads one bounds it itself (the
collector: ``asyncio.timeout``); one a handler leaves unread is drained for at most
``lingering_time`` seconds after the answer, then the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong

log = logging.getLogger("leadstream.http")

ErrorBody = Callable[[int, str], web.Response]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(status: int, message: str) -> web.Response:
    """The API's and the worker's error: ``{"error": message}``."""
    return web.json_response({"error": message}, status=status)


#: How an application words an error (its status and a message for the caller).
ERROR_BODY: web.AppKey[ErrorBody] = web.AppKey("error_body")
#: Called with the status of each answer no handler saw (the HTTP parser refused the request).
REFUSED: web.AppKey[Callable[[int], None]] = web.AppKey("refused")

#: Headers of aiohttp's own answers that a reworded answer keeps (``Allow`` of a 405).
_KEPT = ("Allow",)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's and the handlers' HTTP errors, and any unexpected exception, as the
    application's error body (``ERROR_BODY``). A 500 is logged with its traceback's
    frames and the route, never the exception's message or the path (they may carry
    an id or a value of the request)."""
    render = request.app.get(ERROR_BODY, error_body)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        response = render(exc.status, exc.reason)
        for name in _KEPT:
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Exception as exc:
        resource = request.match_info.route.resource
        log.error(
            "unexpected %s answering %s %s (answered 500)\n%s",
            type(exc).__name__,
            request.method,
            resource.canonical if resource is not None else "(no route)",
            "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
        )
        return render(500, "internal error")


class _Connection(web.RequestHandler):
    """aiohttp's connection, whose answers to requests its parser refused are the
    application's error body."""

    def __init__(self, manager: web.Server, app: web.Application, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._app = app

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp's: too late for another answer
            raise ConnectionError("an answer was already being sent")
        if isinstance(exc, LineTooLong):
            text = f"a request line or header is over {self.max_line_size} bytes"
        elif status == 500:
            text = "internal error"
        else:
            text = "malformed HTTP request"
        log.info("refused a request (%d, %s)", status, type(exc).__name__)
        response = self._app.get(ERROR_BODY, error_body)(status, text)
        response.force_close()
        refused = self._app.get(REFUSED)
        if refused is not None:
            refused(status)
        return response


class _Server(web.Server):
    def __init__(self, served: web.Server, app: web.Application, **kwargs: Any) -> None:
        super().__init__(
            served.request_handler,
            request_factory=served.request_factory,
            handler_cancellation=served.handler_cancellation,
        )
        self.app, self.kwargs = app, kwargs

    def __call__(self) -> web.RequestHandler:
        return _Connection(self, self.app, loop=asyncio.get_running_loop(), **self.kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections answer the parser's refusals in the
    application's words and close slow ones (module docstring).

    ``header_timeout``: seconds a connection may take to send a request's line and
    headers (counted from its opening or its last answer); ``body_timeout``: seconds
    an unread body is drained after the answer. ``kwargs``: aiohttp's ``AppRunner``
    and connection options (``access_log``).
    """

    def __init__(
        self,
        app: web.Application,
        *,
        header_timeout: float,
        body_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.connection_options = {
            **kwargs,
            "keepalive_timeout": header_timeout,
            "lingering_time": body_timeout,
        }

    async def _make_server(self) -> web.Server:
        # AppRunner's own (the application's startup, then its request handler and
        # factory), served over _Connection: the one place this reaches into aiohttp
        served = await super()._make_server()
        return _Server(served, self.app, **self.connection_options)


async def serve(runner: Runner, host: str, port: int) -> web.TCPSite:
    """Set ``runner`` up and listen on ``host:port`` (0: any free port)."""
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return site


def run(runner: Runner, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then clean up (what ``web.run_app`` does, over
    ``Runner``)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await serve(runner, host, port)
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
