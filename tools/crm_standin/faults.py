"""Faults a stand-in answers with on demand, one per request, in order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

Kind = Literal["429", "500", "503", "timeout", "slow"]
#: How a stand-in words an error: (status, message, headers) -> its vendor's error response.
Shape = Callable[[int, str, dict[str, str]], web.Response]


@dataclass
class Faults:
    queue: deque[tuple[Kind, float]] = field(default_factory=deque)
    served: list[tuple[Kind, float]] = field(default_factory=list)

    def add(self, kind: Kind, seconds: float = 1.0, times: int = 1) -> None:
        """``429`` and ``503`` with ``Retry-After: seconds``; ``500``; ``timeout``: no answer for
        ``seconds`` then a dropped connection; ``slow``: the real answer after ``seconds``."""
        self.queue.extend([(kind, seconds)] * times)

    async def next(
        self, request: web.Request, error_body: dict[str, object], shape: Shape | None = None
    ) -> web.Response | None:
        """The fault for this request, or None to answer it (after a slow fault's wait).
        ``shape`` words the error the vendor's way (default: ``error_body`` plus a message)."""
        if not self.queue:
            return None
        kind, seconds = self.queue.popleft()
        self.served.append((kind, seconds))

        def answer(status: int, message: str, headers: dict[str, str]) -> web.Response:
            if shape is not None:
                return shape(status, message, headers)
            body = error_body | {"message": message}
            return web.json_response(body, status=status, headers=headers)

        if kind in ("429", "503"):
            message = (
                "You have reached your ten_secondly_rolling limit."
                if kind == "429"
                else "Service unavailable"
            )
            return answer(int(kind), message, {"Retry-After": f"{seconds:g}"})
        if kind == "500":
            return answer(500, "internal error", {})
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
