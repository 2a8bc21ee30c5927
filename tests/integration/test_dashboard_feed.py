"""The dashboard's live feed over the real Redis, without a browser (tests/browser/ has those).

An open feed must not hold the API up at shutdown: aiohttp waits for running
handlers, and before ``closing`` a stop with one open tab took 122 s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tools.launch import leadstream

pytestmark = pytest.mark.integration


async def test_an_open_feed_pings_and_does_not_hold_up_a_shutdown(
    unique: str, tmp_path: Path
) -> None:
    api = leadstream(
        "api", log=tmp_path / "api.log", env={"LEADSTREAM_REDIS_KEY_PREFIX": f"ls:test:{unique}:"}
    )
    await api.start().wait_ready_async(30)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{api.url}/ui/feed") as feed:
            assert feed.headers["Content-Type"] == "text/event-stream"
            lines: list[bytes] = []
            while b"event: ping\n" not in lines:
                lines.append(await asyncio.wait_for(feed.content.readline(), 10))
            started = time.monotonic()
            status = await asyncio.to_thread(api.stop, timeout=30)
            seconds = time.monotonic() - started
    finally:
        api.stop()
    assert status == 0
    assert seconds < 10, seconds
    assert "Traceback" not in api.log_text(), api.log_text()[-3000:]
