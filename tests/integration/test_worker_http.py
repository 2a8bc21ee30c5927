"""The worker serves its own /health, /ready and Prometheus /metrics (no Redis relay)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from tests.factories import REPO
from tests.faults.harness import lead_keyed
from tests.integration.live import WorkerProcess, answer_of, collect, exchange
from tools.launch import free_port

pytestmark = pytest.mark.integration


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def test_health_readiness_and_metrics_of_a_running_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run_id = uuid.uuid4().hex[:8]
    port = free_port()
    worker = WorkerProcess(run_id, tmp_path, LEADSTREAM_WORKER_PORT=str(port))
    worker.start()  # returns once GET /ready on that port answered 200
    try:
        assert await get(port, "/health") == (200, '{"status": "ok"}')
        # aiohttp's own errors are JSON too (stream_app/httpserver.py)
        assert await get(port, "/nope") == (404, '{"error": "Not Found"}')
        long_header = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n"
        _, raw = await exchange(f"http://127.0.0.1:{port}", long_header)
        assert answer_of(raw)[::2] == (
            400,
            {"error": "a request line or header is over 8190 bytes"},
        )
        status, body = await get(port, "/ready")
        assert (status, json.loads(body)) == (200, {"status": "ready"})

        events = lead_keyed(f"h{run_id}-", prospects=30, seed=3)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for event in events:
                await producer.send(
                    worker.names.input_for("page_view"),
                    key=str(event["lead_id"]).encode(),
                    value=json.dumps(event).encode(),
                )
            await producer.send(worker.names.input_for("page_view"), key=b"x", value=b"not json")
            await producer.flush()
        finally:
            await producer.stop()
        await collect(kafka_bootstrap, [worker.names.score_updates], until=30, quiet=2)
        await asyncio.sleep(1)
        status, metrics = await get(port, "/metrics")
    finally:
        worker.stop()

    assert status == 200
    types = {str(e["type"]) for e in events}
    for event_type in types:
        count = sum(1 for e in events if e["type"] == event_type)
        assert f'leadstream_events_in_total{{type="{event_type}"}} {count:.1f}' in metrics
    assert 'leadstream_dead_letters_total{reason="not_json"} 1.0' in metrics
    assert "leadstream_transitions_total{to_stage=" in metrics
    topic = worker.names.input_for("page_view")
    for partition in range(3):  # every event was committed or is about to be: lag is small
        assert f'leadstream_consumer_lag{{partition="{partition}",topic="{topic}"}}' in metrics
    assert "leadstream_rebalances_total 1.0" in metrics
    assert "leadstream_ready 1.0" in metrics
    assert "leadstream_assigned_partitions" in metrics


def test_a_taken_port_stops_the_worker_at_start_with_what_to_set() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "stream_app", "worker"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**os.environ, "LEADSTREAM_WORKER_PORT": str(port)},
        )
    assert done.returncode == 2
    assert f"cannot serve health and metrics on 127.0.0.1:{port}" in done.stderr
    assert "LEADSTREAM_WORKER_PORT" in done.stderr and "Traceback" not in done.stderr
