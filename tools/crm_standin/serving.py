"""What both stand-ins do to serve themselves on loopback: start on ``host``/``port``
(port 0: a free one, read back), stop, and say where they listen."""

from __future__ import annotations

from aiohttp import web


class Serving:
    """Mixed into a stand-in that has ``host``, ``port``, ``_runner`` and ``app()``."""

    host: str
    port: int
    _runner: web.AppRunner | None

    def app(self) -> web.Application:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
