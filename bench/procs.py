"""The processes the phases start: the worker, the bare Faust agents, and a probe of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import BOOTSTRAP
from bench.topology import READY
from stream_app.config import REPO_ROOT
from stream_app.topics import TopicNames


def child_pid(pid: int) -> int:
    """The first child of ``pid`` (the worker under py-spy)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


class BenchProcess:
    """``python -m <module> ...`` as a process, configured by ``LEADSTREAM_*`` variables.

    It runs this checkout's code with this interpreter (cwd and ``PYTHONPATH`` are the
    repository root), logs to ``log``, and is ready once ``ready`` appears in that log.
    """

    def __init__(
        self,
        args: list[str],
        ready: str,
        *,
        prefix: str,
        app_id: str,
        data_dir: Path,
        instance: str,
        log: Path,
        extra_env: dict[str, str] | None = None,
        profile: Path | None = None,
    ) -> None:
        self.args = args
        self.ready = ready
        self.log = log
        self.profile = profile
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "LEADSTREAM_TOPIC_PREFIX": prefix,
            "LEADSTREAM_APP_ID": app_id,
            "LEADSTREAM_DATA_DIR": str(data_dir),
            "LEADSTREAM_INSTANCE_ID": instance,
            **(extra_env or {}),
        }
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.offset = 0

    def start(self) -> None:
        command = [sys.executable, "-m", *self.args]
        if self.profile is not None:  # py-spy samples the process; collapsed stacks
            spy = str(Path(sys.executable).parent / "py-spy")
            command = [
                spy,
                "record",
                "--format",
                "raw",
                "-r",
                "50",
                "-o",
                str(self.profile),
                "--",
                *command,
            ]
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def move_data(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env["LEADSTREAM_DATA_DIR"] = str(data_dir)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid if self.profile is None else child_pid(self.proc.pid)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace")

    async def wait_started(self, limit_s: float = 300) -> float:
        """Until the ready line is logged; returns its time (``perf_counter``)."""
        while self.ready not in self.log_text():
            if not self.running:
                raise RuntimeError(f"{' '.join(self.args)} exited; see {self.log}")
            if time.perf_counter() - self.started > limit_s:
                raise RuntimeError(f"{' '.join(self.args)} not ready in {limit_s:.0f}s")
            await asyncio.sleep(0.1)
        return time.perf_counter()

    def _status_mib(self, field: str) -> float:
        """A ``kB`` field of the process's ``/proc/<pid>/status``, in MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        return round(int(next(ln.split()[1] for ln in status if ln.startswith(field))) / 1024, 1)

    def rss_mib(self) -> float:
        return self._status_mib("VmRSS:")

    def peak_rss_mib(self) -> float:
        return self._status_mib("VmHWM:")

    def rocksdb_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.data_dir.rglob("*") if f.is_file())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, IndexError):
            os.kill(self.pid, sig)  # under py-spy: py-spy writes its file when the child ends
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    async def wait_for_log(self, text: str, limit_s: float) -> str:
        """The first log line of this run of the process that holds ``text``."""
        started = time.perf_counter()
        while time.perf_counter() - started < limit_s:
            line = next((ln for ln in self.log_text().splitlines() if text in ln), None)
            if line is not None:
                return line.split("[INFO] ", 1)[-1].strip()
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{self.args} did not log {text!r} within {limit_s:.0f}s; {self.log}")


def bench_worker(
    prefix: str,
    app_id: str,
    redis_prefix: str,
    data_dir: Path,
    instance: str,
    log: Path,
    profile: Path | None = None,
) -> BenchProcess:
    """``python -m stream_app worker`` on the run's topics, Redis prefix, group and data."""
    return BenchProcess(
        ["stream_app", "worker"],
        READY,
        prefix=prefix,
        app_id=app_id,
        data_dir=data_dir,
        instance=instance,
        log=log,
        profile=profile,
        extra_env={
            "LEADSTREAM_REDIS_KEY_PREFIX": redis_prefix,
            "LEADSTREAM_SWEEP_INTERVAL_SECONDS": "3600",
            "LEADSTREAM_WORKER_PORT": "0",
        },  # two workers in scale_out: any free port
    )


async def probe(prefix: str, tag: str, limit_s: float = 300) -> float:
    """Send one lead's profile event; seconds until its score update comes out."""
    names = TopicNames(prefix)
    event_id = f"{tag}-probe-{uuid.uuid4().hex[:6]}"
    event = {
        "type": "profile_update",
        "event_id": event_id,
        "lead_id": f"{tag}-probe",
        "occurred_at": datetime.now(UTC).isoformat(),
        "job_title": "VP Marketing",
    }
    watch = AIOKafkaConsumer(
        names.score_updates,
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="latest",
        fetch_max_wait_ms=20,
    )
    await watch.start()
    await watch.getmany(timeout_ms=100)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        started = time.perf_counter()
        await producer.send_and_wait(
            names.input_for("profile_update"),
            key=event["lead_id"].encode(),
            value=json.dumps(event).encode(),
        )
        while time.perf_counter() - started < limit_s:
            batch = await watch.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if json.loads(record.value).get("event_id") == event_id:
                        return time.perf_counter() - started
        raise RuntimeError(f"probe {event_id} got no score update within {limit_s}s")
    finally:
        await producer.stop()
        await watch.stop()
