"""The local stack: Apache Kafka (KRaft) and Redis on loopback, without Docker.

``python -m tools stack up`` (``make stack-up``) resolves the Kafka broker from Maven Central
with ``mvn`` (``infra/kafka/pom.xml``), formats KRaft storage once and starts a
combined broker+controller on 127.0.0.1:9092; it uses a Redis already answering
on 127.0.0.1:6379, or starts Debian's ``redis-server`` (installing it with
apt-get when missing) with AOF persistence. Everything lives under ``.stack/``.

It is idempotent: ``up`` twice reuses what runs. ``down`` stops only processes
that ``up`` started, identified by pid file *and* process start time, never by
name, so a Kafka or Redis of somebody else's is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.config import REPO_ROOT
from tools.errors import StackError
from tools.pids import PidFile, is_zombie, start_ticks

POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
LOG4J = REPO_ROOT / "infra" / "kafka" / "log4j2.properties"


class StackSettings(BaseSettings):
    """Where and on which ports the local stack runs (env prefix ``LEADSTREAM_STACK_``)."""

    model_config = SettingsConfigDict(env_prefix="LEADSTREAM_STACK_", frozen=True)

    dir: Path = Field(REPO_ROOT / ".stack", description="LEADSTREAM_STACK_DIR")
    kafka_port: int = Field(9092, description="LEADSTREAM_STACK_KAFKA_PORT")
    controller_port: int = Field(9093, description="LEADSTREAM_STACK_CONTROLLER_PORT")
    redis_port: int = Field(6379, description="LEADSTREAM_STACK_REDIS_PORT")
    brokers: int = Field(
        1,
        ge=1,
        le=5,
        description=(
            "LEADSTREAM_STACK_BROKERS: 1, or a KRaft cluster of that many brokers (each also a "
            "controller) on kafka_port, kafka_port+2, ... and controller_port, controller_port+2"
        ),
    )
    kafka_heap: str | None = Field(
        None,
        description="LEADSTREAM_STACK_KAFKA_HEAP: broker -Xmx (unset: 1g; 512m per cluster node)",
    )
    start_timeout: float = Field(120.0, description="LEADSTREAM_STACK_START_TIMEOUT seconds")


def kafka_version() -> str:
    """The Kafka release the stack runs: the one pinned in ``infra/kafka/pom.xml``."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not match:
        raise StackError(f"{POM}: no <kafka.version> property")
    return match.group(1)


def say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


# --- process bookkeeping ----------------------------------------------------


def _stop_pid(pid: int, name: str, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if start_ticks(pid) is None or is_zombie(pid):
            return
        time.sleep(0.2)
    say(f"{name} (pid {pid}) did not stop within {grace:.0f}s of SIGTERM; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


def resolve_jars(pom: Path, lib: Path, what: str, version: str, *properties: str) -> None:
    """Copy ``pom``'s runtime dependencies from Maven Central into ``lib``, once.

    A ``.complete`` marker (holding ``version``) says a run finished; Maven is
    installed from Debian first if it is missing. ``properties`` are extra
    ``-D`` settings for the pom (e.g. the Kafka version of the tools).
    """
    marker = lib / ".complete"
    if marker.exists():
        return
    if shutil.which("mvn") is None:
        apt_install("maven")
    say(f"resolving {what} from Maven Central into {lib}")
    lib.mkdir(parents=True, exist_ok=True)
    argv = [
        "mvn",
        "-B",
        "-q",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        *properties,
        f"-DoutputDirectory={lib}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"mvn could not resolve {what} (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
    marker.write_text(version)


def apt_install(package: str) -> None:
    """Install a Debian package; needs root (as on these machines) or passwordless sudo."""
    if shutil.which("apt-get") is None:
        raise StackError(f"{package} is not installed and there is no apt-get to install it")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say(f"installing Debian package {package} (apt-get update, then install)")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        result = subprocess.run(prefix + argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(
                f"`{' '.join(argv)}` failed (exit {result.returncode}):\n{result.stderr[-2000:]}"
            )


# --- readiness probes ---------------------------------------------------------


async def _kafka_metadata(bootstrap: str, limit_s: float) -> int:
    """Number of brokers in a Metadata response, or raise."""
    from aiokafka import AIOKafkaClient  # noqa: PLC0415  (keeps `stack --help` fast)

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(limit_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), limit_s)
        return len(client.cluster.brokers())
    finally:
        await client.close()


def kafka_answers(port: int, timeout: float = 3.0) -> bool:
    # While polling a broker that is still starting, aiokafka logs every refused
    # connection at ERROR; the probe's answer is all we want.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_kafka_metadata(f"127.0.0.1:{port}", timeout)) > 0
    except Exception:
        return False
    finally:
        quiet.setLevel(level)


def redis_answers(port: int, timeout: float = 1.0) -> bool:
    import redis  # noqa: PLC0415

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


# --- the two services -----------------------------------------------------------


class Kafka:
    """One broker of the local stack: the single broker, or node ``node`` of a cluster."""

    def __init__(self, cfg: StackSettings, node: int = 1) -> None:
        self.cfg = cfg
        self.node = node
        self.version = kafka_version()
        single = cfg.brokers == 1
        self.name = "kafka" if single else f"kafka-{node}"
        self.cluster = cfg.dir / "kafka" if single else cfg.dir / f"kafka-{cfg.brokers}"
        self.home = self.cluster if single else self.cluster / f"node-{node}"
        self.lib = cfg.dir / "kafka" / f"lib-{self.version}"  # one download serves every mode
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.config = self.home / "server.properties"
        self.pidfile = PidFile(self.home / "kafka.pid")
        self.port = cfg.kafka_port + 2 * (node - 1)
        self.controller_port = cfg.controller_port + 2 * (node - 1)

    @property
    def log(self) -> Path:
        return self.logs / "server.log"

    def answers(self) -> bool:
        return kafka_answers(self.port)

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise StackError(
                "no `java` found: Kafka needs Java 17+ (Debian: apt-get install openjdk-17-jre)"
            )
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        match = re.search(r'version "(\d+)', out.stderr)
        if match and int(match.group(1)) < 17:
            raise StackError(f"{java} is Java {match.group(1)}; Kafka {self.version} needs 17+")
        return java

    def _write_config(self) -> None:
        cfg = self.cfg
        n = cfg.brokers
        voters = ",".join(
            f"{i}@127.0.0.1:{cfg.controller_port + 2 * (i - 1)}" for i in range(1, n + 1)
        )
        replicas, min_isr = (1, 1) if n == 1 else (min(3, n), min(2, n - 1))
        self.config.write_text(
            "\n".join(
                [
                    "# Written by `python -m tools stack up`; edits are overwritten.",
                    "process.roles=broker,controller",
                    f"node.id={self.node}",
                    f"controller.quorum.voters={voters}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data}",
                    "num.partitions=4",
                    f"default.replication.factor={replicas}",
                    f"min.insync.replicas={min_isr}",
                    f"offsets.topic.replication.factor={replicas}",
                    "offsets.topic.num.partitions=8",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={min_isr}",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={min_isr}",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )

    def _cluster_id(self, java: str, classpath: str) -> str:
        """One id for every node of the cluster, kept beside the nodes."""
        path = self.cluster / "cluster-id"
        if path.exists():
            return path.read_text().strip()
        cluster_id = (
            subprocess.run(
                [java, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        self.cluster.mkdir(parents=True, exist_ok=True)
        path.write_text(cluster_id)
        return cluster_id

    def _format_storage(self, java: str) -> None:
        if (self.data / "meta.properties").exists():
            return
        classpath = f"{self.lib}/*"
        cluster_id = self._cluster_id(java, classpath)
        say(f"formatting KRaft storage in {self.data} (cluster id {cluster_id})")
        result = subprocess.run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        java = self._java()
        resolve_jars(POM, self.lib, f"Apache Kafka {self.version}", self.version)
        self._write_config()
        self._format_storage(java)
        heap = self.cfg.kafka_heap or ("1g" if self.cfg.brokers == 1 else "512m")
        argv = [
            java,
            f"-Xmx{heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp",
            f"{self.lib}/*",
            "kafka.Kafka",
            str(self.config),
        ]
        with open(self.logs / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )
        self.pidfile.write(proc.pid, argv)
        say(
            f"started Kafka {self.version} as {self.name} on 127.0.0.1:{self.port} "
            f"(pid {proc.pid}); log {self.log}"
        )


class Redis:
    name = "redis"

    def __init__(self, cfg: StackSettings) -> None:
        self.cfg = cfg
        self.home = cfg.dir / "redis"
        self.pidfile = PidFile(self.home / "redis.pid")

    @property
    def log(self) -> Path:
        return self.home / "redis.log"

    def answers(self) -> bool:
        return redis_answers(self.cfg.redis_port)

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
        )
        if exe is None:
            apt_install("redis-server")
            exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = [
            exe,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.cfg.redis_port),
            "--dir",
            str(self.home),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.log),
            "--protected-mode",
            "yes",
        ]
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=self.home,
            start_new_session=True,
        )
        self.pidfile.write(proc.pid, argv)
        say(f"started redis-server (pid {proc.pid}); log {self.log}")


Service = Kafka | Redis


def _port(service: Service) -> int:
    return service.port if isinstance(service, Kafka) else service.cfg.redis_port


def ensure_up(service: Service, *, wait: bool = True) -> None:
    """Start ``service`` unless it answers; then wait until it does (``wait``)."""
    port = _port(service)
    ours = service.pidfile.live_pid()
    if service.answers():
        owner = f"ours, pid {ours}" if ours else "not started by us; left alone by `down`"
        say(f"{service.name} already answers on 127.0.0.1:{port} ({owner})")
        return
    if ours is None:
        service.start()
        ours = service.pidfile.live_pid()
    elif wait:
        say(f"{service.name} (pid {ours}) is running but not answering yet; waiting")
    if wait:
        wait_up(service)


def wait_up(service: Service) -> None:
    port = _port(service)
    ours = service.pidfile.live_pid()
    deadline = time.monotonic() + service.cfg.start_timeout
    while time.monotonic() < deadline:
        if service.answers():
            say(f"{service.name} answers on 127.0.0.1:{port}")
            return
        if service.pidfile.live_pid() is None:
            raise StackError(
                f"{service.name} exited during start-up. Last lines of {service.log}:\n"
                f"{_tail(service.log)}"
            )
        time.sleep(0.5)
    raise StackError(
        f"{service.name} did not answer on 127.0.0.1:{port} within "
        f"{service.cfg.start_timeout:.0f}s (pid {ours}). Last lines of {service.log}:\n"
        f"{_tail(service.log)}"
    )


def stop(service: Service, *, hard: bool = False) -> bool:
    """Stop the service if we started it; True if something was stopped."""
    pid = service.pidfile.live_pid()
    if pid is None:
        service.pidfile.clear()
        return False
    if hard:
        os.kill(pid, signal.SIGKILL)
        while start_ticks(pid) is not None and not is_zombie(pid):
            time.sleep(0.05)
    else:
        _stop_pid(pid, service.name, grace=60.0)
    service.pidfile.clear()
    say(f"stopped {service.name} (pid {pid}{', SIGKILL' if hard else ''})")
    return True


def stop_together(group: list[Service]) -> list[str]:
    """Stop several services at once (a cluster: its last controller waits for the others
    while they are stopped one by one); the names of those stopped."""
    live = [(s, pid) for s in group if (pid := s.pidfile.live_pid()) is not None]
    for _, pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for service, pid in live:
        _stop_pid(pid, service.name, grace=60.0)  # already signalled: waits, SIGKILL if stuck
        service.pidfile.clear()
        say(f"stopped {service.name} (pid {pid})")
    return [service.name for service, _ in live]


def brokers(cfg: StackSettings) -> list[Kafka]:
    """The configured broker(s): the single one, or every node of the cluster."""
    return [Kafka(cfg, node) for node in range(1, cfg.brokers + 1)]


def services(cfg: StackSettings | None = None) -> tuple[Service, ...]:
    """The configured brokers, then Redis."""
    cfg = cfg or StackSettings()
    return (*brokers(cfg), Redis(cfg))


def _other_modes(cfg: StackSettings) -> list[Kafka]:
    """Brokers of the stack's other modes (single, or a cluster of another size)."""
    found = []
    for n in range(1, 6):
        if n == cfg.brokers:
            continue
        other = cfg.model_copy(update={"brokers": n})
        found += [k for k in brokers(other) if k.pidfile.path.exists()]
    return found


def _running_mode(cfg: StackSettings) -> StackSettings:
    """``cfg``, or the mode of ours that runs when ``LEADSTREAM_STACK_BROKERS`` is not set
    (``make test`` after ``make stack-up BROKERS=3`` uses the cluster); a clear error when
    another mode runs than the one asked for."""
    running = [k for k in _other_modes(cfg) if k.pidfile.live_pid() is not None]
    if not running:
        return cfg
    if "brokers" not in cfg.model_fields_set:
        size = running[0].cfg.brokers
        say(f"using the {size}-broker stack of ours that is running")
        return cfg.model_copy(update={"brokers": size})
    raise StackError(
        f"{', '.join(k.name for k in running)} of another stack mode is running "
        f"(pid {running[0].pidfile.live_pid()}); stop it first: make stack-down"
    )


def up(cfg: StackSettings | None = None) -> None:
    cfg = _running_mode(cfg or StackSettings())
    *kafkas, redis = services(cfg)
    ensure_up(redis)
    for kafka in kafkas:  # a cluster's quorum forms only once its nodes are started
        ensure_up(kafka, wait=False)
    for kafka in kafkas:
        wait_up(kafka)
    if cfg.brokers > 1:
        bootstrap = ",".join(f"127.0.0.1:{k.port}" for k in brokers(cfg))
        say(
            f"a {cfg.brokers}-broker cluster: point Leadstream at it with "
            f"LEADSTREAM_KAFKA_BOOTSTRAP={bootstrap} LEADSTREAM_REPLICATION_FACTOR="
            f"{min(3, cfg.brokers)}"
        )


def down(cfg: StackSettings | None = None) -> list[str]:
    """Stop the brokers (of every mode) and Redis if ``up`` started them; their names."""
    cfg = cfg or StackSettings()
    return stop_together([*services(cfg), *_other_modes(cfg)])


def status(cfg: StackSettings | None = None) -> int:
    """Print one line per service; exit status 0 when both answer."""
    healthy = True
    for service in services(_running_mode(cfg or StackSettings())):
        pid = service.pidfile.live_pid()
        answers = service.answers()
        healthy &= answers
        owner = f"ours (pid {pid})" if pid else "not ours" if answers else "not running"
        state = "answers" if answers else "DOWN"
        print(
            f"{service.name:6} 127.0.0.1:{_port(service):<5} {state:8} {owner:20} log {service.log}"
        )
    return 0 if healthy else 1
