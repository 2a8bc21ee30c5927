"""Two fixes for faust-streaming's consumer around recovery and seeks.

Both are for faust-streaming 0.15.3 (pinned in ``constraints.txt``);
``tests/unit/test_faust_fixes.py`` fails when the patched methods change, so
an upgrade has to look at them again.

1. Seek before resuming (``Recovery.on_recovery_completed``). When a worker
   (re)starts or gains partitions, Faust reads the changelogs with the stream
   partitions paused, then resumes them and *then* seeks them to their
   committed offsets (``Consumer.perform_seek``, a round trip through the
   consumer thread: 200-300 ms here). During that seek the fetcher delivers
   the resumed partitions' records from the position the consumer already
   had, so they are processed twice, and Faust's ack bookkeeping
   (``Consumer._acked``) gets repeated offsets or a hole below its head:
   commits then advanced one offset per 2.8 s or stopped (4 of 4 kill -9
   fault runs). The fixed copy below seeks first and resumes after, so the
   first record a stream sees is the one after the committed offset.

   An earlier fix (stopping the flow before the method) lost records
   instead: a ``getmany`` already waiting when the partitions were resumed
   returned their records, and Faust drops a batch that arrives while the
   flow is stopped, relying on the seek to fetch it again (2.).

2. Partitions without a committed offset (``Consumer.perform_seek``). Faust
   drops fetched records whenever the flow is stopped (a rebalance) and
   relies on a seek to the committed offset to read them again. aiokafka's
   ``seek_to_committed`` leaves a partition without a committed offset where
   it is, i.e. *after* the dropped records, which were then never processed:
   a probe event sent to a new group while its worker restored 100,000 leads
   was never scored. Such a partition is now sought to just after the last
   record handed to a stream, or to its beginning if none was (with
   ``auto_offset_reset=earliest``, what a new consumer would do).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, ensure_TP

_MARK = "__leadstream_fix__"


async def _on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
    """faust-streaming 0.15.3's method with the seek moved before ``resume_partitions``."""
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table], self.standbys_for_table[table]
            )
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(
            f"Recovery rebalancing again app id "
            f"{self.app.consumer_generation_id} param {generation_id}"
        )
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    # the fix: only now may the fetcher hand the stream partitions' records out
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    self.completed.set()
    self.log.dev("Resume stream partitions")
    self.app.flow_control.resume()
    consumer.resume_flow()
    await cast(Any, self.app)._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _perform_seek(self: Any) -> None:
    """faust-streaming 0.15.3's ``Consumer.perform_seek``, plus partitions never committed."""
    read_offset = self._read_offset
    _committed_offsets = await self.seek_to_committed()
    if self.app.conf.consumer_auto_offset_reset == "earliest":
        for tp, offset in _committed_offsets.items():
            if offset is not None or self._is_changelog_tp(tp):
                continue
            last = read_offset.get(tp)  # TP and aiokafka's TopicPartition hash alike
            # Offset 0 is the beginning: if retention removed it, the fetch is out of
            # range and aiokafka resets to the earliest offset. (Asking the broker for
            # it, or aiokafka's seek_to_beginning, waits behind the fetch: ~1 s here.)
            await self._seek(tp, 0 if last is None else last + 1)
    read_offset.update(
        {
            tp: offset if offset is not None and offset >= 0 else None
            for tp, offset in _committed_offsets.items()
        }
    )
    committed_offsets = {
        ensure_TP(tp): offset if offset else None
        for tp, offset in _committed_offsets.items()
        if offset is not None
    }
    self._committed_offset.update(committed_offsets)


def apply() -> None:
    """Install both fixes (idempotent)."""
    for owner, name, fixed in (
        (Recovery, "on_recovery_completed", _on_recovery_completed),
        (Consumer, "perform_seek", _perform_seek),
    ):
        if getattr(getattr(owner, name), _MARK, False):
            continue
        wrapped = functools.wraps(getattr(owner, name))(fixed)
        setattr(wrapped, _MARK, True)
        setattr(owner, name, wrapped)
