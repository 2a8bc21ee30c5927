"""The worker's own health, readiness and Prometheus metrics, on its own port.

    curl 127.0.0.1:8081/health     # 200 while the event loop and the scoring agent run
    curl 127.0.0.1:8081/ready      # 200 once recovery is done and partitions are assigned
    curl 127.0.0.1:8081/metrics    # Prometheus text, this process's figures only

Every worker serves its own figures (no relay through Redis: they go on
when Redis is down, and two workers are told apart by their address and the
``instance`` label). ``LEADSTREAM_WORKER_PORT=0`` takes any free port (the
log says which): what the tests do when several workers share a machine.

Metric names are in the README ("Metrics"). Counters are counted by the
effects driver per batch (``Outputs.counts``: ``<name>|<label>=<value>``);
gauges are read from Faust's consumer when scraped.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from stream_app.errors import ConfigError
from stream_app.httpserver import Runner, json_errors

log = logging.getLogger("leadstream.worker")

#: Help text per counter (the driver's names, without ``_total``).
HELP = {
    "events_in": "input events validated, by type",
    "dead_letters": "messages sent to lead_dead_letters, by reason",
    "events_scored": "events applied to a record, by outcome (scored, duplicate, ...)",
    "transitions": "stage transitions published, by stage moved to",
    "forwarded": "messages sent through the repartition topic, by kind",
    "events_ignored": "valid Segment-spec messages no rule uses, by name (track:<event>, screen)",
    "events_held": "events a lead held while it waited for a claim's answer",
    "merges": "anonymous visitors merged into a lead",
    "processing_errors": "messages the worker failed on (a bug), dead-lettered",
    "rules_reloads": "rules reloads on SIGHUP, by outcome (applied, refused)",
    "rules_switches": "leads re-evaluated against reloaded rules (switch messages handled)",
}


@dataclass
class WorkerMetrics:
    """Counters since start, and the few timings the worker measures."""

    counters: Counter[str] = field(default_factory=Counter)
    lag_seconds: float | None = None  # newest message's Kafka timestamp to now
    sweep_seconds: float = 0.0  # the last decay sweep's duration
    sweeps: int = 0
    started: float = field(default_factory=time.time)

    def count(self, counts: Mapping[str, int]) -> None:
        self.counters.update(counts)

    def observe_lag(self, timestamp_s: float | None) -> None:
        """Seconds from a message's Kafka timestamp (Faust gives seconds) to now."""
        if timestamp_s:
            self.lag_seconds = max(0.0, time.time() - timestamp_s)

    def swept(self, seconds: float) -> None:
        self.sweep_seconds = seconds
        self.sweeps += 1


class Collector:
    """Prometheus families: the counters, and gauges read from the consumer when scraped."""

    def __init__(self, metrics: WorkerMetrics, gauges: Callable[[], Iterator[Metric]]) -> None:
        self.metrics, self.gauges = metrics, gauges

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily] = {}
        for key, value in sorted(self.metrics.counters.items()):
            name, _, label = key.partition("|")
            label_name, _, label_value = label.partition("=")
            base = name.removesuffix("_total")
            family = families.get(base)
            if family is None:
                family = families[base] = CounterMetricFamily(
                    f"leadstream_{base}",
                    HELP.get(base, base.replace("_", " ")),
                    labels=[label_name] if label_name else [],
                )
            family.add_metric([label_value] if label_name else [], value)
        yield from families.values()
        m = self.metrics
        if m.lag_seconds is not None:
            yield GaugeMetricFamily(
                "leadstream_processing_lag_seconds",
                "from the newest scored message's Kafka timestamp to when it was scored",
                m.lag_seconds,
            )
        yield GaugeMetricFamily(
            "leadstream_sweep_duration_seconds", "the last decay sweep's duration", m.sweep_seconds
        )
        sweeps = CounterMetricFamily("leadstream_sweeps", "decay sweeps run")
        sweeps.add_metric([], m.sweeps)
        yield sweeps
        yield GaugeMetricFamily(
            "leadstream_start_time_seconds", "when this worker started (epoch)", m.started
        )
        yield from self.gauges()


@dataclass
class Probes:
    """What /health and /ready answer: callables, so the tests can drive them."""

    alive: Callable[[], str | None]  # None when alive, else why not
    ready: Callable[[], str | None]  # None when ready, else why not


def create_worker_http(probes: Probes, registry: CollectorRegistry) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        why = probes.alive()
        if why is not None:
            return web.json_response({"status": "down", "why": why}, status=503)
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        why = probes.ready()
        if why is not None:
            return web.json_response({"status": "not ready", "why": why}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    app = web.Application(middlewares=[json_errors])  # 404, 405: {"error": ...} too
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


def check_port(host: str, port: int) -> None:
    """Fail at start, with what to set, when the health and metrics port is taken."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve health and metrics on {host}:{port} ({exc.strerror}); set "
                "LEADSTREAM_WORKER_PORT to a free port (0: any free port, logged at start)"
            ) from None


async def serve(
    app: web.Application, host: str, port: int, *, header_timeout: float, body_timeout: float
) -> web.AppRunner:
    """Start serving ``app``; the runner (to clean up) and the port bound are logged.

    ``stream_app.httpserver.Runner``: aiohttp's own errors as JSON, slow clients cut off."""
    runner = Runner(app, header_timeout=header_timeout, body_timeout=body_timeout, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = getattr(site, "_server", None)
    sockets: Any = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    log.info(
        "worker health, readiness and metrics on http://%s:%d (/health /ready /metrics)",
        host,
        bound,
    )
    return runner
