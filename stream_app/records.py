"""The worker's in-memory helpers around the records table: a record cache, a due index."""

from __future__ import annotations

import heapq

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

    def put(self, key: bytes, record: Record) -> None:
        if self.limit <= 0:
            return
        self._records.pop(key, None)
        self._records[key] = record
        if len(self._records) > self.limit:
            del self._records[next(iter(self._records))]

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
