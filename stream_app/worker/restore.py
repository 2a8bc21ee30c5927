"""Restore the records table from its changelog in large batches, before Faust's recovery.

Faust's recovery reads a table's changelog through the worker's own consumer,
one message at a time through its fetcher, conductor and recovery loop: 864k
records for 1M leads took 294 s (3.4k records/s, full bench 2026-12-07) while
the broker hands out tens of thousands a second; the RocksDB writes were 2.4 %
of that time (docs/performance.md, "Restore profile"). The worker already
writes its records around Faust's per-message path (``records.RecordWriter``);
this restores them the same way:

- each changelog partition is read by a consumer of our own (no group, assigned
  partitions) in fetches of megabytes, from the offset after the one the
  partition's database has (Faust's persisted offset) to the changelog's end;
- each fetch of a partition becomes **one** RocksDB write batch that carries the
  records (a null value, a tombstone, deletes its key) **and** the partition's
  persisted offset, under the key Faust's store keeps it under, so the data and
  the offset land together: a kill between two batches leaves a prefix of the
  changelog with the offset of its last record, and the next start reads on
  from there (Faust's own recovery writes the batch, then the offset);
- Faust's recovery is then told the new offsets and finds nothing (or only
  what was written meanwhile) left to replay: its seek, its high-watermark
  check and its "recovery complete" run as before.

Keys deleted by a tombstone during the restore have their ranges compacted
when the partition is done (``records.forget``, or one compaction of the whole
partition when there are many), so an erased person's values do not stay in
the write-ahead log or an SST file of the restored database either.

``restore_partitions`` knows nothing of Faust and is tested on the real Kafka
(``tests/integration/test_bulk_restore.py``); the hook into Faust's recovery is
at the end of this file, with every private Faust access it needs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from rocksdict import BottommostLevelCompaction, CompactOptions, Rdict, WriteBatch

from stream_app.config import Settings
from stream_app.kafka import kafka_options
from stream_app.worker.records import forget

log = logging.getLogger("leadstream.restore")

MIB = 1024 * 1024
#: Past this many deleted keys in one partition's restore, one compaction of the whole
#: partition is cheaper than one per key (``records.forget``: ~36 ms a key).
FORGET_ONE_BY_ONE = 200
PROGRESS_EVERY_S = 5.0


@dataclass
class Partition:
    """One changelog partition to restore into ``db``: offsets ``start`` to ``end - 1``."""

    tp: TopicPartition
    db: Rdict
    start: int  # the first offset to read (Faust's persisted offset + 1)
    end: int  # one past the last offset to restore (the changelog's end when it began)
    last: int | None = None  # the last offset written (with its data) so far
    deleted: set[bytes] = field(default_factory=set)

    @property
    def done(self) -> bool:
        return self.last is not None and self.last >= self.end - 1


@dataclass
class Restored:
    """What one restore did."""

    records: int = 0
    deletes: int = 0
    batches: int = 0
    seconds: float = 0.0
    complete: bool = True  # False: stopped at the deadline, the rest is Faust's
    last: dict[TopicPartition, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def consumer_options(settings: Settings) -> dict[str, Any]:
    """A group-less consumer of large fetches, with the worker's connection settings."""
    return {
        **kafka_options(settings),
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",  # a start compacted away: the earliest left
        # ~1,600 records of 1.3 KB per partition and fetch; more bought no speed and cost
        # peak RSS (docs/performance.md)
        "max_partition_fetch_bytes": 2 * MIB,
        "fetch_max_bytes": 8 * MIB,
        "fetch_max_wait_ms": 100,
    }


async def end_offsets(options: dict[str, Any], tps: list[TopicPartition]) -> dict[Any, int]:
    """Each partition's end offset (one past its last record), asked of the broker."""
    consumer = AIOKafkaConsumer(**options)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


def write_fetch(
    part: Partition, records: Iterable[Any], offset_key: bytes
) -> tuple[int, int] | None:
    """One fetch of ``part`` as one write batch with its persisted offset; (puts, deletes)
    written, or None when the fetch held nothing to restore (all past ``end``)."""
    batch = WriteBatch(raw_mode=True)
    puts = deletes = 0
    last = None
    for record in records:
        if record.offset >= part.end:
            break
        if record.key is not None:  # Faust never writes a changelog record without one
            if record.value is None:
                batch.delete(record.key)
                part.deleted.add(record.key)
                deletes += 1
            else:
                # a key deleted earlier in this restore and written again (an erased
                # lead's new life) stays in ``deleted``: its first life's values are
                # in this database's log too, and compacting its range drops them
                batch.put(record.key, record.value)
                puts += 1
        last = record.offset
    if last is None:
        return None
    # Faust's persisted offset: the last changelog offset the database holds, as text
    # (faust/stores/rocksdb.py, Store.set_persisted_offset); in the same batch as the data.
    batch.put(offset_key, str(last).encode())
    part.db.write(batch)
    part.last = last
    return puts, deletes


def forget_deleted(part: Partition) -> None:
    """Compact the ranges of keys a tombstone deleted during the restore (erasures)."""
    keys = sorted(part.deleted)
    if not keys:
        return
    if len(keys) <= FORGET_ONE_BY_ONE:
        forget(part.db, keys)
        return
    options = CompactOptions()
    options.set_bottommost_level_compaction(BottommostLevelCompaction.force())
    part.db.compact_range(None, None, options)


async def restore_partitions(
    partitions: list[Partition],
    options: dict[str, Any],
    offset_key: bytes,
    *,
    deadline: float | None = None,
    on_written: Callable[[TopicPartition, int], None] | None = None,
    describe: str = "changelog",
) -> Restored:
    """Read each partition from ``start`` to ``end`` and write it into its database in one
    write batch per fetch, each with the partition's offset; ``on_written(tp, offset)``
    after each batch. Stops at ``deadline`` (``time.monotonic()``) with what was written.
    """
    started = time.monotonic()
    out = Restored()
    todo = {p.tp: p for p in partitions if p.end > p.start}
    if not todo:
        return out
    total = sum(p.end - p.start for p in todo.values())
    log.info(
        "bulk restore of %s: %d partition(s), up to %d record(s) to read",
        describe,
        len(todo),
        total,
    )
    consumer = AIOKafkaConsumer(**options)
    await consumer.start()
    try:
        consumer.assign(list(todo))
        for part in todo.values():
            consumer.seek(part.tp, part.start)
        said = started
        while todo:
            if deadline is not None and time.monotonic() > deadline:
                out.complete = False
                for part in todo.values():  # the next slice knows nothing of these
                    forget_deleted(part)
                break
            fetched = await consumer.getmany(*todo, timeout_ms=500)
            for tp, records in fetched.items():
                if tp not in todo:
                    continue
                written = write_fetch(todo[tp], records, offset_key)
                if written is not None:
                    out.records += sum(written)
                    out.deletes += written[1]
                    out.batches += 1
                    last = out.last[tp] = todo[tp].last or 0
                    if on_written is not None:
                        on_written(tp, last)
            for tp in list(todo):
                # done at the last offset, or (a compacted or transactional tail) when
                # the consumer's position reached the end
                if todo[tp].done or await consumer.position(tp) >= todo[tp].end:
                    consumer.pause(tp)  # no more fetches (and buffers) for it
                    forget_deleted(todo.pop(tp))
            now = time.monotonic()
            if now - said >= PROGRESS_EVERY_S:
                said = now
                log.info(
                    "bulk restore of %s: %d of up to %d record(s) in %.0fs (%.0f/s)",
                    describe,
                    out.records,
                    total,
                    now - started,
                    out.records / (now - started),
                )
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    out.seconds = time.monotonic() - started
    log.info(
        "bulk restore of %s: %d record(s) (%d deletes) in %d batch(es) in %.1fs (%.0f/s)%s",
        describe,
        out.records,
        out.deletes,
        out.batches,
        out.seconds,
        out.per_second,
        "" if out.complete else "; its slice of Faust's request timeout ended",
    )
    return out


# ---------------------------------------------------------------------------------------
# Faust's private surface used by the bulk restore: faust-streaming 0.15.3, aiokafka
# 0.14.0 (constraints.txt). Every private name below was read in .venv's
# faust/tables/recovery.py and faust/stores/rocksdb.py of that version;
# tests/unit/test_restore_hook.py fails when the wrapped method's source changes.
# (When stream_app/worker/faust_internals.py exists, this section belongs there.)
#
# Recovery._restart_recovery, per rebalance: build the active partitions' high
# watermarks (``active_highwaters``) and start offsets (``active_offsets``: the
# persisted offset from each partition's database, or the earliest offset - 1),
# then ``await self._wait(self._seek_offsets(consumer, tps, offsets, "active"),
# timeout=broker_request_timeout)``, then ``need_recovery()`` (a high watermark
# above its offset) decides whether it reads the changelog at all; the standby
# partitions go through ``_seek_offsets(..., "standby")`` the same way before
# their own reading. We restore just before each of those seeks and move
# ``offsets[tp]`` to what we wrote, so the seek and what follows start from there.
# ``_wait`` cancels the seek on a new rebalance (our consumer stops, what was
# written stays consistent) and gives up after ``broker_request_timeout``: the
# restore stops itself before that (``deadline``) and, when work remains, sets
# ``signal_recovery_start``, the event a rebalance sets: ``_wait`` then raises
# ``RebalanceAgain`` and the loop starts over (flush, high watermarks, offsets:
# ``_build_offsets`` keeps the larger of ours and the earliest), which brings it
# back here to read on. A long restore thus runs in slices of the timeout.
# ---------------------------------------------------------------------------------------

_MARK = "__leadstream_bulk_restore__"
#: The share of Faust's ``broker_request_timeout`` one slice of the restore may take.
SLICE_OF_TIMEOUT = 0.8
_ENABLED: weakref.WeakKeyDictionary[Any, Settings] = weakref.WeakKeyDictionary()


def enable(app: Any, settings: Settings) -> None:
    """Restore ``app``'s RocksDB tables in bulk (when ``settings.bulk_restore``)."""
    if settings.bulk_restore:
        _install()
        _ENABLED[app] = settings


def _partitions_of(recovery: Any, tps: Iterable[Any], offsets: Any) -> list[Partition]:
    from faust.stores.rocksdb import Store as RocksStore  # noqa: PLC0415

    out = []
    for tp in tps:
        table = recovery.tp_to_table.get(tp)
        store = getattr(table, "data", None)
        if not isinstance(store, RocksStore):
            continue  # memory:// (tests) or not a table's changelog: Faust's way
        offset = offsets.get(tp)
        start = 0 if offset is None or offset < 0 else offset + 1
        db = store._db_for_partition(tp.partition)
        out.append(Partition(TopicPartition(tp.topic, tp.partition), db, start, start))
    return out


async def bulk_before_seek(recovery: Any, tps: set[Any], offsets: Any, title: str) -> None:
    """Restore ``tps`` up to the changelog's end; ``offsets[tp]`` follows each batch."""
    settings = _ENABLED.get(recovery.app)
    if settings is None or not tps:
        return
    parts = _partitions_of(recovery, tps, offsets)
    if not parts:
        return
    options = consumer_options(settings)
    ends = await end_offsets(options, [p.tp for p in parts])
    for part in parts:
        part.end = ends.get(part.tp, part.start)
    by_tp = {(tp.topic, tp.partition): tp for tp in tps}

    def written(tp: TopicPartition, offset: int) -> None:
        offsets[by_tp[(tp.topic, tp.partition)]] = offset

    budget = float(recovery.app.conf.broker_request_timeout) * SLICE_OF_TIMEOUT
    from faust.stores.rocksdb import Store as RocksStore  # noqa: PLC0415

    restored = await restore_partitions(
        parts,
        options,
        RocksStore.offset_key,
        deadline=time.monotonic() + budget,
        on_written=written,
        describe=f"{title} changelog partitions",
    )
    if not restored.complete:
        log.info("bulk restore goes on in a new round of Faust's recovery (a slice ended)")
        recovery.signal_recovery_start.set()


def _install() -> None:
    """Wrap ``Recovery._seek_offsets`` (idempotent): the bulk restore runs first."""
    from faust.tables.recovery import Recovery  # noqa: PLC0415

    original = Recovery._seek_offsets
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    async def _seek_offsets(self: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        await bulk_before_seek(self, tps, offsets, title)
        await original(self, consumer, tps, offsets, title)

    setattr(_seek_offsets, _MARK, True)
    Recovery._seek_offsets = _seek_offsets  # type: ignore[method-assign]
