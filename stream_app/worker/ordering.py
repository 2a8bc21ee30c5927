"""Repartition messages wait until their partition's inputs have been read up to their time.

Partition *p* of the worker reads the input topics' partition *p* and the
repartition topic's partition *p*; Kafka orders each of them, not the two
against each other. When a worker reads its inputs behind (it restarted, it
restores after a rebalance, it has a backlog), a message that reached the
repartition topic quickly can overtake the inputs it follows in time. Left
alone, a lead's claim overtakes its visitor's earlier page views, which then
reach the lead after the identify, and the transitions differ from the
offline replay's (finding 8 in docs/reliability.md).

So each repartition message carries the Kafka timestamp of the input it
stems from (a forwarded event its own; a claim the identifying event's; an
absorb its claim's), and ``TimeOrder`` releases it only once every input
partition of *p* has been read past that time, or read to its end. Kafka
Streams synchronises a task's partitions by timestamp the same way.

Within a partition, repartition messages keep their offset order (a message
waits behind an earlier one that waits); inputs are never held, and the
released messages are put before the first input later than they are.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

#: The frontier of a partition whose inputs are all read to their end.
ALL_READ = float("inf")
#: The frontier of a partition with an input not read at all yet.
NOTHING_READ = float("-inf")


def frontier(inputs: Iterable[tuple[float | None, bool]]) -> float:
    """How far in time partition *p*'s inputs are read, from each input partition's
    (timestamp of the last record read, read to its end?)."""
    low = ALL_READ
    for last_read, at_end in inputs:
        if at_end:
            continue
        low = min(low, NOTHING_READ if last_read is None else last_read)
    return low


@dataclass
class TimeOrder(Generic[T]):
    """Per partition: which messages to handle now, and in which order."""

    _held: dict[int, deque[tuple[float, T]]] = field(default_factory=dict)

    def arrange(
        self,
        partition: int,
        inputs: list[tuple[float, T]],
        internal: list[tuple[float, T]],
        read_to: float,
    ) -> list[T]:
        """This batch's messages of ``partition``, in the order to handle them.

        ``inputs`` and ``internal`` are (Kafka timestamp, message) in the order
        they were read; ``read_to`` is the partition's ``frontier`` after this
        batch. Internal messages not released are held for a later call.
        """
        queue = self._held.setdefault(partition, deque())
        queue.extend(internal)
        order: list[T] = []
        for timestamp, message in inputs:
            while queue and queue[0][0] < timestamp:
                order.append(queue.popleft()[1])
            order.append(message)
        while queue and queue[0][0] < read_to:
            order.append(queue.popleft()[1])
        if not queue:
            del self._held[partition]
        return order

    def held(self) -> Iterator[tuple[int, T]]:
        """Every message held, with its partition."""
        for partition, queue in self._held.items():
            for _, message in queue:
                yield partition, message

    def waiting(self, partition: int | None = None) -> int:
        """How many messages are held (on ``partition``, or on all)."""
        if partition is not None:
            return len(self._held.get(partition, ()))
        return sum(len(queue) for queue in self._held.values())

    def partitions(self) -> list[int]:
        return list(self._held)

    def clear(self) -> list[T]:
        """Forget every held message (a rebalance: they will be read again)."""
        dropped = [message for _, message in self.held()]
        self._held.clear()
        return dropped
