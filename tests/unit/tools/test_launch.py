"""The launcher with real, tiny processes: readiness, a timeout, a death, a stop, an orphan.

Each fake is a python one-liner, no Leadstream code: a server that answers /ready 503
and then 200, one that exits at once, one that ignores SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.errors import LaunchError
from tools.launch import Process, free_port, http_ready, log_line, port_open, use_signal
from tools.pids import is_zombie

# Serves GET /ready: 503 {"why": "warming up"} until READY_AFTER seconds passed, then 200.
READY_LATER = """
import http.server, os, sys, time
born, after = time.monotonic(), float(os.environ["READY_AFTER"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ready = time.monotonic() - born >= after
        self.send_response(200 if ready else 503)
        self.end_headers()
        self.wfile.write(b'{"status": "ready"}' if ready else b'{"why": "warming up"}')
    def log_message(self, *a):
        pass
print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def fake(tmp_path: Path, code: str, **env: str) -> Process:
    return Process("fake", [sys.executable, "-c", code], log=tmp_path / "fake.log", env=env)


def server(tmp_path: Path, after: float) -> Process:
    port = free_port()
    process = fake(tmp_path, READY_LATER, PORT=str(port), READY_AFTER=str(after))
    process.ready = http_ready(f"http://127.0.0.1:{port}/ready")
    return process


def test_ready_waits_for_the_processs_own_signal(tmp_path: Path) -> None:
    process = server(tmp_path, after=1.0).start()
    try:
        ready_at = process.wait_ready(timeout=20, interval=0.05)
        assert ready_at - process.started >= 1.0  # it said 503 until then
        assert process.not_ready() is None
    finally:
        assert process.stop() == -signal.SIGTERM


async def test_ready_waits_on_an_event_loop_too(tmp_path: Path) -> None:
    process = server(tmp_path, after=0.5).start()
    try:
        assert await process.wait_ready_async(limit_s=20, interval=0.05) - process.started >= 0.5
    finally:
        process.stop()


def test_not_ready_in_time_says_the_last_answer_and_the_log(tmp_path: Path) -> None:
    process = server(tmp_path, after=3600).start()
    try:
        with pytest.raises(LaunchError) as failed:
            process.wait_ready(timeout=1.5)
    finally:
        process.stop()
    message = str(failed.value)
    assert "not ready within 2s" in message
    assert '503 {"why": "warming up"}' in message  # the signal's own words
    assert "serving" in message  # the log's tail


def test_a_process_that_dies_fails_at_once_with_its_status_and_log(tmp_path: Path) -> None:
    process = fake(tmp_path, "import sys; print('bad rules file: nope.yaml'); sys.exit(2)")
    process.ready = port_open("127.0.0.1", free_port())  # would never be ready
    process.start()
    started = time.monotonic()
    with pytest.raises(LaunchError) as failed:
        process.wait_ready(timeout=60)
    assert time.monotonic() - started < 10  # not the timeout
    assert "exited with status 2 before it was ready" in str(failed.value)
    assert "bad rules file: nope.yaml" in str(failed.value)
    assert process.stop() == 2


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    process = fake(tmp_path, code).start()
    time.sleep(0.5)  # the handler is installed
    began = time.monotonic()
    assert process.stop(timeout=1) == -signal.SIGKILL
    assert time.monotonic() - began < 10
    assert process.proc is None and not process.running


def test_kill_is_kill_9(tmp_path: Path) -> None:
    process = fake(tmp_path, "import time; time.sleep(60)").start()
    assert process.kill() == -signal.SIGKILL


def test_the_log_appends_and_each_start_is_read_on_its_own(tmp_path: Path) -> None:
    process = fake(tmp_path, "import sys; print(sys.argv[1], flush=True)")
    for word in ("first", "second"):
        process.argv[3:] = [word]
        process.start()
        assert process.proc is not None
        process.proc.wait()
    assert process.log_text().split() == ["first", "second"]
    assert process.new_log_text().split() == ["second"]
    assert log_line(process, "second")() is None
    assert log_line(process, "first")() == "no 'first' logged yet"  # this start's lines only
    process.stop()


def test_a_child_dies_with_its_parent_even_by_kill_9(tmp_path: Path) -> None:
    """The parent launches a sleeper and prints its pid; kill -9 of the parent ends it."""
    parent_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tools.launch import Process\n"
        f"p = Process('child', [sys.executable, '-c', 'import time; time.sleep(60)'], "
        f"log=Path({str(tmp_path / 'child.log')!r})).start()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not is_zombie(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while not is_zombie(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert is_zombie(child), "the child outlived its parent's kill -9"
    finally:
        if parent.stdout is not None:
            parent.stdout.close()
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_detached_process_outlives_its_parent(tmp_path: Path) -> None:
    process = fake(tmp_path, "import time; time.sleep(60)")
    process.detach = True
    process.start()
    try:
        assert os.getsid(process.pid) == process.pid  # its own session: Ctrl-C spares it
    finally:
        process.stop()


def test_each_leadstream_http_process_gets_its_own_port_and_its_ready_url(tmp_path: Path) -> None:
    one = Process("a", ["true"], log=tmp_path / "a.log", env={"LEADSTREAM_WORKER_PORT": "0"})
    two = Process("b", ["true"], log=tmp_path / "b.log")
    given = Process("c", ["true"], log=tmp_path / "c.log", env={"LEADSTREAM_API_PORT": "8123"})
    use_signal(one, "worker")
    use_signal(two, "worker")
    use_signal(given, "api")
    ports = {one.env["LEADSTREAM_WORKER_PORT"], two.env["LEADSTREAM_WORKER_PORT"]}
    assert len(ports) == 2 and "0" not in ports
    assert given.url == "http://127.0.0.1:8123"
    with pytest.raises(LaunchError, match="no readiness signal known"):
        use_signal(one, "simulate")
