"""The worker's helpers around the records table: a record cache, a due index, a writer."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable
from typing import Any

from faust.stores.rocksdb import Store as RocksStore
from faust.types import TP
from rocksdict import BottommostLevelCompaction, CompactOptions, Rdict, WriteBatch

from stream_app.messages import Record


class RecordCache:
    """Decoded records of this worker's own leads (it is their only writer).

    Saves a RocksDB read and a JSON parse per message for active leads.
    Cleared on every rebalance; bounded (oldest inserted go first).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._records: dict[bytes, Record] = {}

    def get(self, key: bytes) -> Record | None:
        return self._records.get(key)

    def __len__(self) -> int:
        return len(self._records)

    def put(self, key: bytes, record: Record) -> None:
        if self.limit <= 0:
            return
        self._records.pop(key, None)
        self._records[key] = record
        if len(self._records) > self.limit:
            del self._records[next(iter(self._records))]

    def forget(self, key: bytes) -> None:
        self._records.pop(key, None)

    def clear(self) -> None:
        self._records.clear()


class DueIndex:
    """In-memory min-heap of (due time, key) for the decay timer of this worker.

    Filled as the scoring agent writes records, and from the local table after
    recovery. Stale entries are harmless: a tick for a lead with nothing due
    changes nothing.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}

    def set(self, key: str, due_at: float | None) -> None:
        if due_at is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) != due_at:
            self._due[key] = due_at
            heapq.heappush(self._heap, (due_at, key))
            if len(self._heap) > 2 * len(self._due) + 1024:
                self._compact()

    def _compact(self) -> None:
        """Drop superseded entries: a busy lead pushes one per event, popped only when due."""
        self._heap = [(due_at, key) for key, due_at in self._due.items()]
        heapq.heapify(self._heap)

    def pop_due(self, now: float, limit: int) -> list[str]:
        out: list[str] = []
        while self._heap and self._heap[0][0] <= now and len(out) < limit:
            due_at, key = heapq.heappop(self._heap)
            if self._due.get(key) == due_at:
                del self._due[key]
                out.append(key)
        return out

    def __len__(self) -> int:
        return len(self._due)


def forget(db: Rdict, keys: list[bytes]) -> None:
    """Rewrite what holds the deleted ``keys``' older values, so none stays on disk.

    A manual compaction of each key's range (rocksdict's ``compact_range``,
    the public way: Faust's store has none) flushes the memtable when it holds
    the key, so the write-ahead log that had its values is dropped, and forces
    the bottommost level too, so every SST file with the key is rewritten
    without it and deleted. Files an open iterator holds (the due-index
    rebuild's) go when it ends. Measured on a 41,000-key test database: 36 ms.
    """
    if not keys:
        return
    options = CompactOptions()
    options.set_bottommost_level_compaction(BottommostLevelCompaction.force())
    for key in keys:
        db.compact_range(key, key, options)


class RecordWriter:
    """Writes a batch's records the way Faust's table does, at a fraction of its cost.

    Faust's ``table[key] = value`` costs ~230 µs (measured): a changelog message
    through Faust's per-message send path and producer buffer, then one
    RocksDB put. This writes the same three things: the records in one RocksDB
    write batch of the partition's database (Faust's ``Store._set``, with its
    key index), the changelog messages on partition *p* of the table's
    changelog topic, produced straight on the aiokafka producer (Faust flushes
    it before every offset commit, as for its own sends), and, once the broker
    acks them, the changelog offset in the partition's database
    (``Store.set_persisted_offset``, what ``Collection._on_changelog_sent``
    does), so a restart replays only what came after. For a store other than
    RocksDB (``memory://`` in tests) it falls back to Faust's own path.

    An item whose value is None is a delete: the key leaves the write batch's
    database and the changelog gets a tombstone (a null value), which is what
    Faust's own restore applies as a delete and what compaction removes the
    key's older values by.

    Deletes are erasures, so the deleted key's range is compacted at once
    (``forget``): a RocksDB delete only hides the older values, which stay in
    the write-ahead log and the SST files until their own compaction.
    """

    def __init__(self, table: Any, send: Callable[..., Awaitable[asyncio.Future[Any]]]) -> None:
        self._table = table
        self._send = send

    async def write(self, partition: int, items: list[tuple[bytes, bytes | None]]) -> None:
        store = self._table.data
        if not isinstance(store, RocksStore):
            for key, value in items:  # these need the partition's current event (the caller's)
                if value is None:
                    self._table.pop(key, None)
                else:
                    self._table[key] = value
            return
        db = store._db_for_partition(partition)
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            if value is None:
                batch.delete(key)
                store._key_index.pop(key, None)
            else:
                batch.put(key, value)
                store._key_index[key] = partition
        db.write(batch)
        forget(db, [key for key, value in items if value is None])
        topic = self._table.changelog_topic.get_topic_name()
        last: asyncio.Future[Any] | None = None
        for key, value in items:
            last = await self._send(topic, key, value, partition)
        if last is not None:
            tp = TP(topic, partition)

            def persisted(fut: asyncio.Future[Any]) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    store.set_persisted_offset(tp, fut.result().offset)

            last.add_done_callback(persisted)
