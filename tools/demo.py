"""``make demo``: the worker, the API and the sales bot on the live local stack, with traffic.

Starts the worker, the query API, a local webhook sink and the notifier
(``notify``, posting Slack Block Kit messages to the sink) in the background
(or reuses them),
produces seeded traffic for a few hundred prospects (anonymous browsing,
identify on a form, e-mail campaigns, downloads, demo requests, some going
cold: the decay sweep recycles those), prints each of this run's stage
transitions from ``lead_stage_transitions`` the way a sales notification bot
would, and beside them what the notifier posted (``slack>`` lines, read back
from the sink: digests when a burst comes faster than one message a second),
then shows the funnel from the API and leaves the API up.
"""

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.transitions import StageTransition
from stream_app.config import REPO_ROOT, Settings
from stream_app.kafka import kafka_options
from stream_app.rules_file import load_rules
from stream_app.sink import Received
from stream_app.topics import TopicNames
from tools.errors import StackError
from tools.pids import PidFile
from tools.traffic import generate

STAGE_LABEL = {"mql": "MQL", "sql": "SQL", "pql": "PQL"}


def bot_line(t: StageTransition) -> str:
    """One transition as a sales notification bot would post it."""
    who = t.lead_id + (f" ({t.account_id})" if t.account_id else "")
    move = f"{STAGE_LABEL.get(t.from_stage, t.from_stage)} -> "
    move += STAGE_LABEL.get(t.to_stage, t.to_stage)
    s = t.scores
    why = ", ".join(f"{c.rule} {c.points:+g}" for c in t.contributions[:4])
    trigger = (
        f"{t.triggering_event_type} {t.triggering_event_id}" if t.triggering_event_id else "decay"
    )
    extra = f" [{t.detail}]" if t.detail else ""
    return (
        f"{t.occurred_at:%Y-%m-%d %H:%M}  {who:32} {move:24} score {s.total:6.1f} "
        f"(fit {s.fit:g} {s.grade}, engagement {s.engagement:g})  {t.reason}{extra}  "
        f"why: {why}  trigger: {trigger}"
    )


async def produce(
    producer: AIOKafkaProducer, events: list[dict[str, Any]], topics: TopicNames
) -> None:
    for event in events:
        key = (event.get("lead_id") or event.get("anonymous_id") or "").encode()
        value = json.dumps(event, separators=(",", ":")).encode()
        await producer.send(topics.input_for(event["type"]), key=key, value=value)
    await producer.flush()


DEMO_DIR = REPO_ROOT / ".stack" / "demo"
#: Where the demo's webhook sink listens (it stands in for Slack).
SINK_PORT = 8099


class SinkTail:
    """The sink's JSON lines written since this run began, as a person would read them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self, mark: str) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        out = []
        for raw in complete.splitlines():
            entry = json.loads(raw)
            if mark not in entry["body"]:
                continue  # another run's transition, or another tool's post
            preview = Received(
                entry["path"], {}, entry["body"].encode(), entry["status"], entry["at"]
            ).preview()
            out.append(preview.removeprefix("slack: "))
        return out


def _has_line(path: Path, offset: int, text: str) -> bool:
    return path.exists() and text in path.read_bytes()[offset:].decode(errors="replace")


async def _wait_for_line(path: Path, offset: int, text: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if _has_line(path, offset, text):
            return
        await asyncio.sleep(0.3)
    raise StackError(f"demo: no {text!r} in {path} after {limit_s:.0f}s")


def _start_background(name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    """Start (or reuse) a demo process that outlives this command; returns its pid."""
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    pidfile = PidFile(DEMO_DIR / f"{name}.pid")
    running = pidfile.live_pid()
    if running is not None:
        print(f"{name} already running (pid {running}); reusing it", file=sys.stderr)
        return running
    log_path = DEMO_DIR / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    pidfile.write(proc.pid, argv)
    print(f"started {name} (pid {proc.pid}); log {log_path}", file=sys.stderr)
    return proc.pid


def stop_background() -> list[str]:
    """Stop the demo's processes if the demo started them."""
    stopped = []
    for name in ("notify", "sink", "api", "worker"):
        pidfile = PidFile(DEMO_DIR / f"{name}.pid")
        pid = pidfile.live_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                if pidfile.live_pid() is None:
                    break
                time.sleep(0.1)
            stopped.append(name)
        pidfile.clear()
    return stopped


async def _wait_until_ready(settings: Settings, log_from: int, limit_s: float = 120) -> None:
    """Wait for the worker's "ready" line (in log text after ``log_from``) and the API."""
    deadline = time.monotonic() + limit_s
    log_path = DEMO_DIR / "worker.log"
    url = f"http://{settings.api_host}:{settings.api_port}/health"
    worker_ready = api_ready = False
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            text = (
                log_path.read_bytes()[log_from:].decode(errors="replace")
                if (log_path.exists())
                else ""
            )
            worker_ready = worker_ready or "Leadstream worker: rules" in text
            if not api_ready:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(url) as response:
                        api_ready = response.status == 200
            if worker_ready and api_ready:
                return
            await asyncio.sleep(0.5)
    raise StackError(
        f"demo: worker ready={worker_ready}, API ready={api_ready} after {limit_s:.0f}s; "
        f"logs in {DEMO_DIR}"
    )


async def _api_get(settings: Settings, path: str) -> Any:
    headers = {}
    if settings.api_token is not None:
        headers["Authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
    url = f"http://{settings.api_host}:{settings.api_port}{path}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return await response.json()


async def run_demo(settings: Settings, prospects: int, seed: int, quiet_s: float) -> int:
    rules = load_rules(settings.rules_path)
    run_id = uuid.uuid4().hex[:6]
    topics = TopicNames.of(settings)
    python = sys.executable
    # A short decay sweep, so the demo shows leads going cold within its run.
    sweep = {"LEADSTREAM_SWEEP_INTERVAL_SECONDS": "5"}
    if "LEADSTREAM_SWEEP_INTERVAL_SECONDS" in os.environ:
        sweep = {}
    worker_log = DEMO_DIR / "worker.log"
    log_from = worker_log.stat().st_size if worker_log.exists() else 0
    reused = PidFile(DEMO_DIR / "worker.pid").live_pid() is not None
    _start_background("worker", [python, "-m", "stream_app", "worker"], sweep)
    _start_background("api", [python, "-m", "stream_app", "api"])
    sink_log = DEMO_DIR / "sink.jsonl"
    _start_background(
        "sink",
        [
            python,
            "-m",
            "stream_app",
            "sink",
            "--port",
            str(SINK_PORT),
            "--out",
            str(sink_log),
            "--quiet",
        ],
    )
    notify_log = DEMO_DIR / "notify.log"
    notify_from = notify_log.stat().st_size if notify_log.exists() else 0
    notify_reused = PidFile(DEMO_DIR / "notify.pid").live_pid() is not None
    _start_background(
        "notify",
        [python, "-m", "stream_app", "notify"],
        {
            "LEADSTREAM_NOTIFY_KIND": "slack",
            "LEADSTREAM_NOTIFY_URL": f"http://127.0.0.1:{SINK_PORT}/services/demo",
            "LEADSTREAM_NOTIFY_START": "latest",  # a first demo posts this run, not the history
            "LEADSTREAM_NOTIFY_LINK_TEMPLATE": "https://crm.example.com/leads/{lead_id}",
        },
    )
    await _wait_until_ready(settings, 0 if reused else log_from)
    if not notify_reused:
        await _wait_for_line(notify_log, notify_from, "notifier assigned")
    sink = SinkTail(sink_log)

    # Follow the transitions topic from its current end: this run's transitions only.
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", linger_ms=5)
    follower = AIOKafkaConsumer(**kafka_options(settings), auto_offset_reset="latest")
    await producer.start()
    await follower.start()
    try:
        known = await producer.partitions_for(topics.transitions)  # waits for metadata
        partitions = [TopicPartition(topics.transitions, p) for p in sorted(known)]
        follower.assign(partitions)
        await follower.seek_to_end(*partitions)
        for tp in partitions:
            await follower.position(tp)

        start = datetime.now(UTC) - timedelta(days=120)
        events = list(generate(prospects, seed, start=start, id_prefix=f"d{run_id}-"))
        print(
            f"demo {run_id}: {len(events)} events for {prospects} prospects (rules "
            f"{rules.stamp}); transitions as a sales bot would post them:\n",
            file=sys.stderr,
        )
        await produce(producer, events, topics)
        seen = posted = 0
        started = last = time.monotonic()
        # Quiet time counts from this run's first transition: a worker may first
        # have a backlog to work through.
        while (seen == 0 or time.monotonic() - last < quiet_s) and (
            time.monotonic() - started < 300
        ):
            batch = await follower.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    transition = StageTransition.model_validate_json(record.value)
                    if transition.lead_id.startswith(f"d{run_id}-"):
                        print(bot_line(transition), flush=True)
                        seen += 1
                        last = time.monotonic()
            for line in sink.new_lines(f"d{run_id}-"):
                print(f"    slack> {line}", flush=True)
                posted += 1
    finally:
        await follower.stop()
        await producer.stop()

    await asyncio.sleep(6)  # the projection and the notifier catch up
    for line in sink.new_lines(f"d{run_id}-"):
        print(f"    slack> {line}", flush=True)
        posted += 1
    funnel = await _api_get(settings, "/funnel")
    top = await _api_get(settings, "/leads?stage=sql&limit=3")
    api = f"http://{settings.api_host}:{settings.api_port}"
    print(
        f"\n{seen} transitions for this run; the notifier posted {posted} Slack message(s) "
        f"for them (MQL, SQL, PQL; {sink_log}). Funnel from {api}/funnel:",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                k: funnel[k]
                for k in (
                    "leads",
                    "stages",
                    "reached_mql",
                    "reached_sql",
                    "mql_to_sql_rate",
                    "median_days_to_mql",
                )
            },
            indent=2,
        ),
        file=sys.stderr,
    )
    if top["leads"]:
        example = top["leads"][0]["lead_id"]
        print(f"\nhottest SQLs: {api}/leads?stage=sql&limit=3", file=sys.stderr)
        print(f"one lead:     {api}/leads/{example}", file=sys.stderr)
    print(
        f"\nThe worker, the API, the notifier and its sink keep running (logs in {DEMO_DIR}). "
        f"Explore the API at {api}/openapi.json; `python -m tools demo --stop` stops "
        f"them, `make stack-down` stops everything.",
        file=sys.stderr,
    )
    return 0


def main(prospects: int = 300, seed: int = 7, quiet_s: float = 15) -> int:
    return asyncio.run(run_demo(Settings(), prospects, seed, quiet_s))
