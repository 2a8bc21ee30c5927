"""The processes the phases start: the worker, the bare Faust agents, and a probe of them."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.common import BOOTSTRAP, watch_from_end
from bench.topology import CLOCK_MARK
from stream_app.config import REPO_ROOT
from stream_app.topics import TopicNames
from tools.errors import LaunchError
from tools.launch import Process, log_line, use_signal
from tools.traffic import REPLAY_CLOCK_SKEW_SECONDS


def child_pid(pid: int) -> int:
    """The first child of ``pid`` (the worker under py-spy)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


class BenchProcess(Process):
    """``python -m <module> ...`` as a process (``tools.launch``), configured by
    ``LEADSTREAM_*`` variables, running this checkout's code with this interpreter.

    Two moments of its start are told apart. The clock starts at ``clock_mark``, a log
    line the process writes as it starts, before it joins its group: the worker and the
    bare Faust agents both log one at the same point of their start, so their timings
    include the join and any restore alike (the agents serve no readiness of their own,
    and the worker's /ready comes only after the join). Ready is the process's own
    signal (the worker's /ready), for a phase that needs it warm, not timed.
    """

    def __init__(
        self,
        args: list[str],
        clock_mark: str,
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
        self.clock_mark = clock_mark
        self.profile = profile
        command = [sys.executable, "-m", *args]
        if profile is not None:  # py-spy samples the process; collapsed stacks
            spy = str(Path(sys.executable).parent / "py-spy")
            command = [spy, "record", "--format", "raw", "-r", "50", "-o", str(profile), "--"]
            command += [sys.executable, "-m", *args]
        super().__init__(
            " ".join(args),
            command,
            log=log,
            env={
                "PYTHONPATH": str(REPO_ROOT),
                "LEADSTREAM_TOPIC_PREFIX": prefix,
                "LEADSTREAM_APP_ID": app_id,
                "LEADSTREAM_DATA_DIR": str(data_dir),
                "LEADSTREAM_INSTANCE_ID": instance,
                **(extra_env or {}),
            },
        )
        self.clock = log_line(self, clock_mark)
        self.data_dir = data_dir

    @property
    def log(self) -> Path:
        return self.log_path

    def move_data(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env["LEADSTREAM_DATA_DIR"] = str(data_dir)

    @property
    def pid(self) -> int:
        """The process measured and signalled: under py-spy, py-spy's child."""
        pid = super().pid
        return pid if self.profile is None else child_pid(pid)

    async def wait_started(self, limit_s: float = 300) -> float:
        """Until the clock mark is logged; returns when (``perf_counter``)."""
        while (why := self.clock()) is not None:
            if not self.running:
                raise LaunchError(f"{self.name} exited before {why}. Log {self.log}")
            if time.perf_counter() - self.started > limit_s:
                raise LaunchError(f"{self.name}: {why} after {limit_s:.0f}s. Log {self.log}")
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

    async def wait_for_log(self, text: str, limit_s: float) -> str:
        """The first log line of this run of the process that holds ``text``."""
        started = time.perf_counter()
        while time.perf_counter() - started < limit_s:
            line = next((ln for ln in self.new_log_text().splitlines() if text in ln), None)
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
    """``python -m stream_app worker`` on the run's topics, Redis prefix, group and data;
    ready on its own /ready, on a free port of its own (two workers in scale_out)."""
    worker = BenchProcess(
        ["stream_app", "worker"],
        CLOCK_MARK,
        prefix=prefix,
        app_id=app_id,
        data_dir=data_dir,
        instance=instance,
        log=log,
        profile=profile,
        extra_env={
            "LEADSTREAM_REDIS_KEY_PREFIX": redis_prefix,
            "LEADSTREAM_SWEEP_INTERVAL_SECONDS": "3600",
            # the seeded traffic, dated up to 2028, is replayed as history
            "LEADSTREAM_MAX_CLOCK_SKEW_SECONDS": str(REPLAY_CLOCK_SKEW_SECONDS),
        },
    )
    use_signal(worker, "worker")
    return worker


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
    watch = await watch_from_end(names.score_updates, fetch_max_wait_ms=20)
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
