"""The stack script's bookkeeping: it stops only what it started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.devstack import StackSettings, kafka_version, services, stop
from tools.pids import PidFile


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


def test_a_three_broker_stack_has_three_voters_on_their_own_ports(tmp_path: Path) -> None:
    cfg = StackSettings(dir=tmp_path, kafka_port=19092, controller_port=19093, brokers=3)
    *kafkas, _ = services(cfg)
    assert [k.name for k in kafkas] == ["kafka-1", "kafka-2", "kafka-3"]
    assert [(k.port, k.controller_port) for k in kafkas] == [
        (19092, 19093),
        (19094, 19095),
        (19096, 19097),
    ]
    assert len({k.home for k in kafkas}) == 3 and len({k.lib for k in kafkas}) == 1
    node = kafkas[1]
    node.home.mkdir(parents=True)
    node._write_config()
    config = dict(
        line.split("=", 1)
        for line in node.config.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert config["node.id"] == "2"
    assert config["controller.quorum.voters"] == (
        "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    )
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"
    assert config["offsets.topic.replication.factor"] == "3"
    assert config["min.insync.replicas"] == "2"


def test_the_single_broker_keeps_its_place_and_one_replica(tmp_path: Path) -> None:
    kafka, _ = services(StackSettings(dir=tmp_path))
    assert (kafka.name, kafka.home, kafka.port) == ("kafka", tmp_path / "kafka", 9092)
    kafka.home.mkdir(parents=True)
    kafka._write_config()
    assert "offsets.topic.replication.factor=1" in kafka.config.read_text()
