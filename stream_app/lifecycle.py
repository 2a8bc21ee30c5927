"""Running a long-lived coroutine until SIGTERM or SIGINT, shared by the processes that
are plain asyncio programs (the projector, the notifier, crm-sync)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable


async def until_signalled(work: Awaitable[None]) -> None:
    """Await ``work``; SIGTERM or SIGINT cancels it, and a stop is not an error.

    The handlers are removed afterwards: a signal arriving after the loop closed would
    print a traceback about asyncio's wakeup fd (a stopping child can get SIGTERM twice:
    its own, and the parent's death).
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await work
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
