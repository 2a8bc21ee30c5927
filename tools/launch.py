"""One launcher for Leadstream's processes: the tests, the fault harness, the bench, the demo.

    worker = leadstream("worker", log=tmp / "worker.log", env={"LEADSTREAM_APP_ID": "ls-x"})
    worker.start().wait_ready(timeout=90)     # polls the worker's own /ready
    ...
    worker.stop()                             # SIGTERM, then SIGKILL after the grace
    worker.kill()                             # kill -9 (the fault harness, the recovery bench)

A process runs this checkout's code with this interpreter (cwd: the repository
root), its output appended to its log file. Unless ``detach`` (the demo's
processes, which outlive the command), it dies with its parent: the kernel
sends it SIGTERM when the launching thread dies, even by kill -9
(``prctl(PR_SET_PDEATHSIG)``), so a killed test run leaves no worker behind. (The
thread, not the process: start it from one that lives as long, e.g. the main thread.)

Ready means what the process itself says, asked over its own signal:

- worker: ``GET /ready`` on ``LEADSTREAM_WORKER_PORT`` answers 200 (recovery done,
  partitions assigned); the launcher gives each worker a free port of its own;
- api: ``GET /ready`` (Redis answers); collect: ``GET /ready`` (the broker answers);
  crm-sync: ``GET /ready`` (the CRM took its credentials, Redis answers, partitions assigned);
- sink: its port accepts a connection (it serves POSTs only: listening is all it has);
- notify and projector serve nothing over HTTP, so their honest signal is still a log
  line written when it became true: the notifier's "notifier assigned" comes from its
  consumer's partition-assignment callback; the projector's "projection consuming"
  once its consumer started (aiokafka then joins the group on the first fetch).

A process that exits while it is awaited, or is not ready in time, raises
``LaunchError`` with its exit status, the signal's last answer and its log's tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from stream_app.config import REPO_ROOT
from tools.errors import LaunchError

#: A readiness signal: None once ready, else what it answered (for the error message).
Probe = Callable[[], str | None]

_PR_SET_PDEATHSIG = 1
# Resolved here, in the parent: between fork and exec the child only calls it, and imports
# nothing (an import could wait forever on a lock another thread held at the fork).
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A port nobody listens on now (the kernel's pick; another process could take it
    before ours binds it, and then ours dies saying so)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ready(url: str, timeout: float = 2.0) -> Probe:
    """Ready when ``GET url`` answers 200."""

    def probe() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                return None if answer.status == 200 else f"{url}: {answer.status}"
        except urllib.error.HTTPError as exc:  # answered, but not 200 (503: not ready yet)
            body = exc.read().decode(errors="replace")[:200]
            exc.close()
            return f"{url}: {exc.code} {body}"
        except (urllib.error.URLError, OSError) as exc:
            return f"{url}: {getattr(exc, 'reason', exc)}"

    return probe


def port_open(host: str, port: int) -> Probe:
    """Ready when ``host:port`` accepts a TCP connection."""

    def probe() -> str | None:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return None
        except OSError as exc:
            return f"{host}:{port}: {exc.strerror or exc}"

    return probe


class Process:
    """One command as a child process with its environment, log, readiness signal and stop."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        ready: Probe | None = None,
        detach: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv  # a test may wrap the command before start
        self.log_path = log
        self.env = {**os.environ, **(env or {})}
        self.ready = ready
        self.url: str | None = None  # where an HTTP process listens (set with its signal)
        self.detach = detach
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0  # time.perf_counter() at the last start
        self.log_offset = 0  # the log's size at the last start: this run's lines follow

    # --- starting and readiness ---------------------------------------------------

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.detach,
                preexec_fn=None if self.detach else _die_with_parent,  # noqa: PLW1509 (module doc)
            )
        return self

    @property
    def pid(self) -> int:
        """The pid signals go to (a wrapper, e.g. the bench's py-spy, may name its child)."""
        if self.proc is None:
            raise LaunchError(f"{self.name} was not started")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once it exited (negative: the signal that ended it)."""
        return None if self.proc is None else self.proc.poll()

    def not_ready(self) -> str | None:
        """None once ready; else why not. Raises ``LaunchError`` if the process exited."""
        if self.proc is None:
            raise LaunchError(f"{self.name} was not started")
        if self.proc.poll() is not None:
            raise self._failure(f"exited with status {self.proc.returncode} before it was ready")
        return None if self.ready is None else self.ready()

    def wait_ready(self, timeout: float = 120, interval: float = 0.2) -> float:
        """Block until ready; returns when (``time.perf_counter()``)."""
        deadline = time.monotonic() + timeout
        while (why := self.not_ready()) is not None:
            if time.monotonic() > deadline:
                raise self._failure(f"not ready within {timeout:.0f}s (last answer: {why})")
            time.sleep(interval)
        return time.perf_counter()

    async def wait_ready_async(self, limit_s: float = 120, interval: float = 0.2) -> float:
        """``wait_ready`` for a caller on an event loop (the probe runs in a thread)."""
        deadline = time.monotonic() + limit_s
        while (why := await asyncio.to_thread(self.not_ready)) is not None:
            if time.monotonic() > deadline:
                raise self._failure(f"not ready within {limit_s:.0f}s (last answer: {why})")
            await asyncio.sleep(interval)
        return time.perf_counter()

    # --- logs -------------------------------------------------------------------------

    def log_text(self) -> str:
        """The whole log file (every start of this process appends to it)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def new_log_text(self) -> str:
        """What the last start logged."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.new_log_text().splitlines()[-lines:]) or "(nothing logged)"

    def _failure(self, what: str) -> LaunchError:
        return LaunchError(
            f"{self.name} (pid {self.proc.pid if self.proc else '-'}) {what}. "
            f"Last lines of {self.log_path}:\n{self.log_tail()}"
        )

    # --- stopping -----------------------------------------------------------------------

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        """Send ``sig``; SIGKILL if it has not exited after ``timeout`` s. The exit status."""
        if self.proc is None:
            return None
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError, IndexError):
                os.kill(self.pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                print(
                    f"{self.name} (pid {proc.pid}) did not exit within {timeout:.0f}s of "
                    f"{signal.Signals(sig).name}; sending SIGKILL",
                    file=sys.stderr,
                )
                proc.kill()
                proc.wait()
        self.proc = None
        return proc.returncode

    def kill(self) -> int | None:
        """kill -9: no shutdown code runs (what a crash does)."""
        return self.stop(signal.SIGKILL)


def log_line(process: Process, text: str) -> Probe:
    """Ready once ``text`` is in what the process logged since its last start: only for a
    process that has no other signal (module doc)."""

    def probe() -> str | None:
        return None if text in process.new_log_text() else f"no {text!r} logged yet"

    return probe


#: The log line of each process that serves nothing over HTTP (module doc says why).
LOG_SIGNALS = {"notify": "notifier assigned", "projector": "projection consuming"}
#: The port variable and path of each process that answers its own readiness over HTTP.
HTTP_SIGNALS = {
    "worker": "LEADSTREAM_WORKER_PORT",
    "api": "LEADSTREAM_API_PORT",
    "collect": "LEADSTREAM_COLLECT_PORT",
    "crm-sync": "LEADSTREAM_CRM_PORT",
}


def leadstream(
    command: str,
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    args: list[str] | None = None,
    name: str | None = None,
    detach: bool = False,
) -> Process:
    """``python -m stream_app COMMAND ARGS`` with that command's readiness signal.

    The sink is a developer tool, not part of the product: ``python -m tools sink``.
    """
    package = "tools" if command == "sink" else "stream_app"
    argv = [sys.executable, "-m", package, command, *(args or [])]
    process = Process(name or command, argv, log=log, env=env, detach=detach)
    use_signal(process, command)
    return process


def use_signal(process: Process, command: str) -> None:
    """Give ``process`` the readiness signal of ``stream_app COMMAND`` (module doc).

    An HTTP process gets a free port of its own unless its env names one; the port is
    written into ``process.env`` and ``process.url`` says where to ask. The sink listens
    where its ``--port`` says (required).
    """
    if command in HTTP_SIGNALS:
        variable = HTTP_SIGNALS[command]
        port = int(process.env.get(variable) or 0) or free_port()
        process.env[variable] = str(port)
        process.url = f"http://127.0.0.1:{port}"
        process.ready = http_ready(f"{process.url}/ready")
    elif command == "sink":
        if "--port" not in process.argv:
            raise LaunchError("the sink needs --port PORT (where its readiness is asked)")
        port = int(process.argv[process.argv.index("--port") + 1])
        process.url = f"http://127.0.0.1:{port}"
        process.ready = port_open("127.0.0.1", port)
    elif command in LOG_SIGNALS:
        process.ready = log_line(process, LOG_SIGNALS[command])
    else:
        raise LaunchError(f"no readiness signal known for `python -m stream_app {command}`")
