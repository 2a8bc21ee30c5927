"""Worker metrics: counted in memory, flushed to Redis every few seconds, served by the API.

The API runs apart from the worker (and may run several times), so the worker
publishes its counters through Redis rather than on a port of its own.
Counters are deltas added with HINCRBYFLOAT; a flush that fails keeps its
deltas for the next one. Names are ``<metric>|<label>=<value>``; the driver
(``stream_app.pipeline.PartitionBatch``) counts them per batch.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

from redis.exceptions import RedisError

from stream_app.stores.projection import RedisProjection


class Metrics:
    def __init__(self) -> None:
        self._counters: Counter[str] = Counter()
        self._gauges: dict[str, float] = {}

    def count(self, counts: Mapping[str, int]) -> None:
        self._counters.update(counts)

    def observe_lag(self, timestamp_s: float | None) -> None:
        """Seconds from a message's Kafka timestamp (Faust gives seconds) to now."""
        if timestamp_s:
            self._gauges["processing_lag_seconds"] = max(0.0, time.time() - timestamp_s)

    def drain(self) -> tuple[dict[str, float], dict[str, float]]:
        counters = {name: float(n) for name, n in self._counters.items()}
        gauges = dict(self._gauges)
        self._counters.clear()
        if gauges:
            gauges["updated_at_seconds"] = time.time()
        return counters, gauges

    def restore(self, counters: dict[str, float]) -> None:
        for name, n in counters.items():
            self._counters[name] += int(n)

    async def flush(self, projection: RedisProjection) -> None:
        counters, gauges = self.drain()
        try:
            await projection.add_metrics(counters)
            await projection.set_gauges(gauges)
        except (RedisError, OSError):
            self.restore(counters)  # keep them for the next flush
