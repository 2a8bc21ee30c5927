"""A webhook sink on loopback that records every request: what Slack or Teams would receive.

``python -m tools sink`` stands in for a Slack or Teams webhook on a
machine without one (``make demo`` runs it beside the notifier), and the
notifier's tests run it in-process to see exactly what was posted. It can
answer slowly (``delay``) or fail on purpose (``script``: statuses for the
first requests, e.g. 500 then 429 with ``Retry-After``) to exercise the
notifier's retries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import web

#: Largest body accepted (Slack's own limit is about 40 KB of text).
MAX_BODY = 1024 * 1024


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def preview(self) -> str:
        """What a person would see first: Slack's text, the card's first line, or the JSON."""
        try:
            data = self.json()
        except ValueError:
            return self.body[:200].decode(errors="replace")
        if isinstance(data, dict) and "blocks" in data:
            return f"slack: {data.get('text', '')}"
        if isinstance(data, dict) and data.get("attachments"):
            body = data["attachments"][0].get("content", {}).get("body", [])
            texts = [b.get("text") or b.get("items", [{}])[0].get("text", "") for b in body]
            return "teams: " + " | ".join(t for t in texts if t)
        if isinstance(data, dict) and data.get("type") == "stage_transition":
            return (
                f"webhook: {data['lead_id']} {data['from_stage']} -> {data['to_stage']} "
                f"({data['transition_id']})"
            )
        return json.dumps(data)[:200]


@dataclass
class Sink:
    host: str = "127.0.0.1"
    port: int = 0
    delay: float = 0.0
    script: list[tuple[int, float | None]] = field(default_factory=list)  # (status, Retry-After)
    out: IO[str] | None = None
    echo: bool = False
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def delivered(self) -> list[Received]:
        """The requests answered 2xx: what the webhook's owner has."""
        return [r for r in self.received if 200 <= r.status < 300]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, retry_after = self.script.pop(0) if self.script else (200, None)
        if self.delay:
            await asyncio.sleep(self.delay)
        got = Received(request.path, dict(request.headers), body, status, time.time())
        self.received.append(got)
        if self.out is not None:
            self.out.write(
                json.dumps(
                    {
                        "path": got.path,
                        "status": status,
                        "at": got.at,
                        "headers": got.headers,
                        "body": body.decode(errors="replace"),
                    }
                )
                + "\n"
            )
            self.out.flush()
        if self.echo:
            print(f"{'' if status < 300 else f'[answered {status}] '}{got.preview()}", flush=True)
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return web.Response(status=status, text="ok" if status < 300 else "no", headers=headers)

    async def start(self) -> str:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server: Any = site._server
            self.port = server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _cmd_sink(args: argparse.Namespace) -> int:
    async def serve(out: IO[str] | None) -> None:
        sink = Sink(args.host, args.port, delay=args.delay, out=out, echo=not args.quiet)
        url = await sink.start()
        print(f"webhook sink listening on {url}", file=sys.stderr, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sink.stop()

    with contextlib.ExitStack() as stack, contextlib.suppress(KeyboardInterrupt):
        out = stack.enter_context(open(args.out, "a", encoding="utf-8")) if args.out else None
        asyncio.run(serve(out))
    return 0


def add_command(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    sink = sub.add_parser(
        "sink",
        help="a local webhook that prints and records what the notifier posts",
        formatter_class=formatter,
        description=(
            "An HTTP server on loopback that accepts any POST, prints what a person would\n"
            "see (Slack's text, a Teams card's title, a transition) and appends each request\n"
            "as a JSON line to --out. Point the notifier at it to try it without Slack."
        ),
        epilog=(
            "examples:\n"
            "  python -m tools sink --port 8099 --out posted.jsonl &\n"
            "  LEADSTREAM_NOTIFY_URL=http://127.0.0.1:8099/hook python -m stream_app notify"
        ),
    )
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--port", type=int, default=8099)
    sink.add_argument("--out", type=Path, help="append each request here as a JSON line")
    sink.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    sink.add_argument("--quiet", action="store_true", help="do not print each request")
    sink.set_defaults(handler=_cmd_sink)
