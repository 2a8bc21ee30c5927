"""The stack script's bookkeeping: it stops only what it started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stream_app.devstack import PidFile, StackSettings, kafka_version, services, stop


def test_the_kafka_version_comes_from_the_pom() -> None:
    assert kafka_version() == "4.4.0"


def test_a_pid_file_recognises_its_own_process_only(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pidfile = PidFile(tmp_path / "x.pid")
        pidfile.write(proc.pid, ["sleep"])
        assert pidfile.live_pid() == proc.pid
        # Same pid, different start time: a recycled pid that is not ours.
        text = pidfile.path.read_text().replace('"start_ticks": ', '"start_ticks": 1')
        pidfile.path.write_text(text)
        assert pidfile.live_pid() is None
    finally:
        proc.kill()
        proc.wait()


def test_stop_leaves_a_process_it_did_not_start_alone(tmp_path: Path) -> None:
    cfg = StackSettings(dir=tmp_path)
    kafka, _ = services(cfg)
    kafka.home.mkdir(parents=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        kafka.pidfile.path.write_text(f'{{"pid": {stranger.pid}, "start_ticks": 1, "argv": []}}')
        assert stop(kafka) is False
        assert stranger.poll() is None  # still running
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_stops_what_it_started(tmp_path: Path) -> None:
    cfg = StackSettings(dir=tmp_path)
    _, redis = services(cfg)
    redis.home.mkdir(parents=True)
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    redis.pidfile.write(ours.pid, ["sleep"])
    assert stop(redis) is True
    assert ours.wait(timeout=10) != 0
    assert not redis.pidfile.path.exists()
