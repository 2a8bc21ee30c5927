"""Faults a stand-in answers with on demand, one per request, in order."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

Kind = Literal["429", "500", "timeout", "slow"]


@dataclass
class Faults:
    queue: deque[tuple[Kind, float]] = field(default_factory=deque)
    served: list[tuple[Kind, float]] = field(default_factory=list)

    def add(self, kind: Kind, seconds: float = 1.0, times: int = 1) -> None:
        """``429`` with ``Retry-After: seconds``; ``500``; ``timeout``: no answer for
        ``seconds`` then a dropped connection; ``slow``: the real answer after ``seconds``."""
        self.queue.extend([(kind, seconds)] * times)

    async def next(
        self, request: web.Request, error_body: dict[str, object]
    ) -> web.Response | None:
        """The fault for this request, or None to answer it (after a slow fault's wait)."""
        if not self.queue:
            return None
        kind, seconds = self.queue.popleft()
        self.served.append((kind, seconds))
        if kind == "429":
            return web.json_response(
                error_body | {"message": "You have reached your ten_secondly_rolling limit."},
                status=429,
                headers={"Retry-After": f"{seconds:g}"},
            )
        if kind == "500":
            return web.json_response(error_body | {"message": "internal error"}, status=500)
        await asyncio.sleep(seconds)
        if kind == "timeout":  # the client gave up by now; if not, the connection is dropped
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=504)
        return None


async def faults_route(request: web.Request) -> web.Response:
    """POST /__standin/faults {"kind": "429", "seconds": 2, "times": 3}: queue faults."""
    faults: Faults = request.app[FAULTS]
    body = await request.json()
    faults.add(body["kind"], float(body.get("seconds", 1)), int(body.get("times", 1)))
    return web.json_response({"queued": len(faults.queue)})


FAULTS: web.AppKey[Faults] = web.AppKey("faults", Faults)
