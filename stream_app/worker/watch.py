"""Noticing a partition that has records waiting and is not being processed.

A rebalance must never leave a partition unprocessed, and Faust's consumer
drops fetched records in several places (a stopped flow, a generation that
changed under a fetch, a partition paused while its records were in flight),
each time relying on a later seek to read them again. If one of those seeks
does not come, the partition's committed offset stays below its end, the
fetcher has nothing to hand out, and the worker looks idle and healthy.

``Stalls`` is the pure part: fed a snapshot per partition every check, it
names the partitions that had a backlog at two checks in a row while not one
of their records reached the agent in between. The worker's ``watch`` task
(``stream_app.worker.agents``) takes the snapshots while the worker is idle, logs a
stalled partition with the consumer's view of it (Faust's offsets and flags,
aiokafka's position), and seeks it back to its committed offset, the answer
Faust itself gives to records it dropped. Not when the partition's
repartition messages are held for their inputs (``stream_app/worker/ordering.py``)
or acks are on their way: neither is a lost fetch.

Seen in a fault run (finding 9 in docs/reliability.md): after a kill -9 and
a restart, aiokafka's position was at the end of three partitions while
Faust's committed and read offsets were where the restart had begun, no
record of them had reached the agent, and none was acked.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Snapshot:
    """One partition as the consumer sees it: offsets are Kafka's "next to read"."""

    committed: int | None  # the group's committed offset (None: never committed)
    end: int | None  # the partition's high watermark, as last fetched (None: unknown)
    handed: int  # how many of its records have reached the agent so far (a counter)


@dataclass
class Stalls:
    """Partitions behind their end with no record handed between two checks."""

    _last: dict[object, Snapshot] = field(default_factory=dict)
    _suspect: set[object] = field(default_factory=set)

    def check(self, snapshots: dict[object, Snapshot]) -> list[object]:
        """Feed this check's snapshots; return the partitions stalled since the last two."""
        stalled = []
        suspect = set()
        for tp, now in snapshots.items():
            before = self._last.get(tp)
            behind = now.end is not None and now.end > (now.committed or 0)
            idle = before is not None and before.handed == now.handed
            if behind and idle and before is not None and before.committed == now.committed:
                if tp in self._suspect:
                    stalled.append(tp)
                else:
                    suspect.add(tp)
        self._suspect = suspect | set(stalled)
        self._last = dict(snapshots)
        return stalled

    def forget(self) -> None:
        """A rebalance moved partitions: start over."""
        self._last.clear()
        self._suspect.clear()
