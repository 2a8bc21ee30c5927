"""Worker metrics: counted in memory, flushed to Redis every few seconds, served by the API.

The API runs apart from the worker (and may run several times), so the worker
publishes its counters through Redis rather than on a port of its own.
Counters are deltas added with HINCRBYFLOAT; a flush that fails keeps its
deltas for the next one.
"""

from __future__ import annotations

import time
from collections import Counter

from stream_app.pipeline import Effects, Routed


class Metrics:
    def __init__(self) -> None:
        self._counters: Counter[str] = Counter()
        self._gauges: dict[str, float] = {}

    def count_ingested(self, routed: Routed, kafka_timestamp_ms: int | None) -> None:
        if routed.stage == "dead_letter":
            self._counters[f"dead_letters_total|reason={routed.kind}"] += 1
        else:
            self._counters[f"events_in_total|type={routed.kind}"] += 1
        if kafka_timestamp_ms:
            # seconds from the broker's append time to the worker taking the event
            lag = max(0.0, time.time() - kafka_timestamp_ms / 1000)
            self._gauges["processing_lag_seconds"] = lag

    def count_scored(self, effects: Effects) -> None:
        self._counters[f"events_scored_total|status={effects.status}"] += 1
        for transition in effects.transitions:
            self._counters[f"transitions_total|to_stage={transition.to_stage}"] += 1
        if effects.resend:
            self._counters["transitions_resent_total"] += len(effects.resend)

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
