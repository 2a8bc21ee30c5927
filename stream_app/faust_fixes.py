"""A fix for a race in faust-streaming's recovery that can stop offset commits.

When a worker (re)starts or gains partitions, Faust's ``Recovery`` reads the
changelogs with the consumer's flow active, then in ``on_recovery_completed``
resumes the stream partitions and *then* seeks them to their committed
offsets (``Consumer.perform_seek``, a round trip through the consumer
thread: 200-300 ms here). While that seek runs the fetcher is free to
deliver the stream partitions' records from the position the consumer
already had, so those records are processed twice: once before the seek,
once after it. Faust's ack bookkeeping (``Consumer._acked``, one list per
partition, deduplicated only until a commit removes the entries) does not
survive that: in our kill -9 fault runs the duplicates left the lists
with a repeated offset in every other place, so each commit advanced a
partition by one offset every 2.8 s, or with a hole below its head, so that
partition never committed again. The worker kept scoring but its committed
offsets stood still; the next restart would replay everything since.

Reproduced in 4 of 4 kill -9 runs of ``tests/faults`` with the Redis
projection moved out of the Faust consumer (which changes the timing), and
0 of 18 with it inside: the race is there either way, only less often hit.
The fix stops the flow before the method runs, so nothing is delivered until
the partitions have been sought to their committed offsets; the method
itself resumes the flow at its end (and a new rebalance resumes it too).

faust-streaming 0.15.3 (``constraints.txt``); checked on each upgrade: the
tests in ``tests/faults`` (kill -9) fail without it.
"""

from __future__ import annotations

import functools
from typing import Any

from faust.tables.recovery import Recovery

_MARK = "__leadstream_fix__"


def stop_flow_before_recovery_seek() -> None:
    """Patch ``Recovery.on_recovery_completed`` to stop the consumer's flow first (idempotent)."""
    original = Recovery.on_recovery_completed
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    async def on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
        # no record reaches a stream until perform_seek has moved the positions
        self.app.consumer.stop_flow()
        await original(self, generation_id)

    setattr(on_recovery_completed, _MARK, True)
    patched: Any = on_recovery_completed
    Recovery.on_recovery_completed = patched  # type: ignore[method-assign]
