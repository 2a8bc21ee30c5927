"""Helpers to run the real worker as a process (``tools.launch``) and talk to it through Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_app.codec import decode_record
from stream_app.topics import TopicNames
from tools.launch import Process, use_signal
from tools.traffic import REPLAY_CLOCK_SKEW_SECONDS


class WorkerProcess(Process):
    """``python -m stream_app worker`` with its own topics, group, data dir and port
    (``tools.launch``: ready when its /ready answers 200, stopped by SIGTERM or kill -9)."""

    def __init__(self, run_id: str, tmp: Path, **env: str) -> None:
        self.run_id = run_id
        self.names = TopicNames(f"t{run_id}.")
        super().__init__(
            f"worker {run_id}",
            [sys.executable, "-m", "stream_app", "worker"],
            log=tmp / f"worker-{run_id}.log",
            env={
                "LEADSTREAM_TOPIC_PREFIX": self.names.prefix,
                "LEADSTREAM_APP_ID": f"ls-{run_id}",
                "LEADSTREAM_DATA_DIR": str(tmp / f"data-{run_id}"),
                "LEADSTREAM_TOPIC_PARTITIONS": "3",
                "LEADSTREAM_SWEEP_INTERVAL_SECONDS": "3600",  # no wall-clock decay in oracles
                "LEADSTREAM_REDIS_KEY_PREFIX": f"ls:test:{run_id}:",
                # the seeded traffic, dated up to 2028, is replayed as history; a test of
                # the bound itself passes a LEADSTREAM_MAX_CLOCK_SKEW_SECONDS of its own
                "LEADSTREAM_MAX_CLOCK_SKEW_SECONDS": str(REPLAY_CLOCK_SKEW_SECONDS),
                **env,
            },
        )
        use_signal(self, "worker")  # /ready on a free LEADSTREAM_WORKER_PORT

    @property
    def records_changelog(self) -> str:
        """Faust's changelog of the records table (Faust names it, without our prefix)."""
        return f"ls-{self.run_id}-lead-records-changelog"

    def start(self, timeout: float = 90) -> WorkerProcess:
        super().start()
        self.wait_ready(timeout)
        return self

    def http_url(self) -> str:
        """Where this worker serves /health, /ready and /metrics (its own free port)."""
        return f"http://127.0.0.1:{self.env['LEADSTREAM_WORKER_PORT']}"

    async def metric(self, line_start: str) -> float | None:
        """The value of the first /metrics line starting with ``line_start``, or None."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.http_url()}/metrics") as response,
        ):
            for line in (await response.text()).splitlines():
                if line.startswith(line_start):
                    return float(line.rsplit(" ", 1)[1])
        return None


def worker_on_own_topic(tmp_path_factory: Any, topic_base: str) -> Iterator[WorkerProcess]:
    """A module's worker reading one input topic of its own (``LEADSTREAM_INPUT_TOPICS``),
    as a pipeline writes it; its log must show no traceback when it stops."""
    run = uuid.uuid4().hex[:8]
    process = WorkerProcess(
        run, tmp_path_factory.mktemp("worker"), LEADSTREAM_INPUT_TOPICS=f"t{run}.{topic_base}"
    )
    process.start()
    yield process
    process.stop()
    assert "Traceback" not in process.log_text(), process.log_text()[-4000:]


class Lockstep:
    """Produce one event at a time, each only after the worker has taken the previous.

    "Taken" means scored: seen as a score update carrying its event id, or, for
    an anonymous visitor not linked yet (no update), in a record the worker
    wrote to the records changelog (its ``seen`` ids). Feeding in lock-step
    makes the input order the order of application, so the live run must
    equal the offline replay exactly.
    """

    def __init__(self, bootstrap: str, worker: WorkerProcess) -> None:
        self.bootstrap = bootstrap
        self.worker = worker
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        self.watch = AIOKafkaConsumer(
            worker.records_changelog,
            worker.names.score_updates,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            group_id=f"watch-{worker.run_id}",
            fetch_max_wait_ms=20,
        )
        self.seen: set[str] = set()

    async def __aenter__(self) -> Lockstep:
        await self.producer.start()
        await self.watch.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()
        await self.watch.stop()

    async def send_raw(self, topic_base: str, value: bytes, key: bytes = b"k") -> None:
        await self.producer.send_and_wait(self.worker.names.name(topic_base), key=key, value=value)

    async def feed(self, event: dict[str, Any], limit_s: float = 30) -> None:
        key = (event.get("lead_id") or event.get("anonymous_id") or "").encode()
        topic = self.worker.names.input_for(event["type"])
        await self.producer.send_and_wait(topic, key=key, value=json.dumps(event).encode())
        wanted = event["event_id"]
        try:
            await asyncio.wait_for(self._wait_for(wanted), limit_s)
        except TimeoutError:
            raise AssertionError(
                f"{wanted} ({event['type']}) was not taken by the worker within "
                f"{limit_s}s; worker log: {self.worker.log_path}"
            ) from None

    async def _wait_for(self, wanted: str) -> None:
        while wanted not in self.seen:
            batch = await self.watch.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if record.value is None:
                        continue
                    if record.topic == self.worker.names.score_updates:
                        value = json.loads(record.value)
                        if value.get("event_id"):
                            self.seen.add(value["event_id"])
                    elif record.key is not None and record.key.startswith(b"anon:"):
                        stored = decode_record(record.value)
                        if stored is not None:
                            self.seen.update(stored.state.seen)


async def collect(
    bootstrap: str, topics: Iterable[str], until: int, limit_s: float = 60, quiet: float = 3
) -> list[bytes]:
    """Read topics from the start until ``until`` records arrived and ``quiet`` s passed."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"collect-{time.monotonic_ns()}",
    )
    await consumer.start()
    out: list[bytes] = []
    try:
        deadline = time.monotonic() + limit_s
        last = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                out += [r.value for r in records]
                last = time.monotonic()
            if len(out) >= until and time.monotonic() - last > quiet:
                break
    finally:
        await consumer.stop()
    return out


async def exchange(url: str, request: bytes, wait: float = 10) -> tuple[float, bytes]:
    """``request``'s raw bytes to the server at ``url``; the seconds until it closed the
    connection (or ``wait`` passed) and every byte it answered."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    start = time.monotonic()
    try:
        writer.write(request)
        await writer.drain()
        answered = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(wait):
                answered = await reader.read()
        return time.monotonic() - start, answered
    finally:
        writer.close()


def answer_of(raw: bytes) -> tuple[int, dict[str, str], Any]:
    """An HTTP/1.1 answer's status, headers and JSON body (raises if the body is not JSON)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert headers["Content-Type"].startswith("application/json"), raw[:500]
    return int(status_line.split()[1]), headers, json.loads(body)
