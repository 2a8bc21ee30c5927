"""``make demo``: the worker, the API and the sales bot on the live local stack, with traffic.

Starts the worker, the query API, a local webhook sink and the notifier
(``notify``, posting Slack Block Kit messages to the sink) in the background
with ``tools.launch`` (or reuses them) and waits for each one's readiness signal,
produces seeded traffic for a few hundred prospects (anonymous browsing,
identify on a form, e-mail campaigns, downloads, demo requests, some going
cold: the decay sweep recycles those), prints each of this run's stage
transitions from ``lead_stage_transitions`` the way a sales notification bot
would, and beside them what the notifier posted (``slack>`` lines, read back
from the sink: digests when a burst comes faster than one message a second),
then shows the funnel from the API and leaves the API up. It prints the
dashboard's address (``/ui/`` on the API) as soon as the API is ready, and
again at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.transitions import StageTransition
from stream_app.config import Settings
from stream_app.kafka import kafka_options
from stream_app.rules_file import load_rules
from stream_app.topics import TopicNames
from tools.crm_standin.serve import HUBSPOT_FIRST, SALESFORCE_FIRST, render
from tools.devstack import StackSettings
from tools.errors import StackError
from tools.launch import Process, leadstream, port_open
from tools.pids import PidFile
from tools.sink import Received
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


def demo_dir() -> Path:
    """Where the demo keeps its processes' pid files and logs: ``<stack dir>/demo``
    (``LEADSTREAM_STACK_DIR``, default ``.stack``)."""
    return StackSettings().dir / "demo"


#: Where the demo's webhook sink listens (it stands in for Slack).
SINK_PORT = 8099
#: ``--crm``: where each CRM's stand-in listens, and its crm-sync's /ready.
CRM_PORTS = {"hubspot": (8097, 8083), "salesforce": (8098, 8084)}
#: What crm-sync needs to reach each stand-in (tools/crm_standin: its fixed credentials).
CRM_ENV = {
    "hubspot": lambda url: {
        "LEADSTREAM_HUBSPOT_BASE_URL": url,
        "LEADSTREAM_HUBSPOT_TOKEN": "standin-token",
    },
    "salesforce": lambda url: {
        "LEADSTREAM_SALESFORCE_BASE_URL": url,
        "LEADSTREAM_SALESFORCE_DOMAIN": "standin",
        "LEADSTREAM_SALESFORCE_CLIENT_ID": "standin-client",
        "LEADSTREAM_SALESFORCE_CLIENT_SECRET": "standin-secret",
    },
}


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


def _start_background(process: Process) -> None:
    """Start (or reuse) a demo process that outlives this command (its own session, a pid
    file in ``demo_dir()``, so ``demo --stop`` and ``make stack-down`` find it)."""
    pidfile = PidFile(demo_dir() / f"{process.name}.pid")
    running = pidfile.live_pid()
    if running is not None:
        print(f"{process.name} already running (pid {running}); reusing it", file=sys.stderr)
        return
    process.start()
    pidfile.write(process.pid, process.argv)
    print(f"started {process.name} (pid {process.pid}); log {process.log_path}", file=sys.stderr)


async def _until_ready(process: Process, limit_s: float = 120) -> None:
    """Wait for the process's own readiness signal (``tools/launch.py``); a reused one,
    started by an earlier demo, is asked the same way while its pid file says it runs."""
    if process.proc is not None:
        await process.wait_ready_async(limit_s)
        return
    pidfile = PidFile(demo_dir() / f"{process.name}.pid")
    deadline = time.monotonic() + limit_s
    while process.ready is not None and (why := await asyncio.to_thread(process.ready)):
        if pidfile.live_pid() is None or time.monotonic() > deadline:
            raise StackError(
                f"demo: the {process.name} started by an earlier demo is not ready ({why}); "
                f"`python -m tools demo --stop` stops it; log {process.log_path}"
            )
        await asyncio.sleep(0.5)


def stop_background() -> list[str]:
    """Stop the demo's processes if the demo started them."""
    stopped = []
    names = [f"crm-sync-{c}" for c in CRM_PORTS] + [f"crm-standin-{c}" for c in CRM_PORTS]
    for name in (*names, "notify", "sink", "api", "worker"):
        pidfile = PidFile(demo_dir() / f"{name}.pid")
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


async def _api_get(settings: Settings, path: str) -> Any:
    headers = {}
    if settings.api_token is not None:
        headers["Authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
    url = f"http://{settings.api_host}:{settings.api_port}{path}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return await response.json()


def crm_processes(crm: str, home: Path) -> tuple[list[Process], dict[str, str]]:
    """The stand-in of ``crm`` and a crm-sync writing to it (both outlive the demo), and
    crm-sync's environment (for its --setup)."""
    port, health = CRM_PORTS[crm]
    url = f"http://127.0.0.1:{port}"
    standin = Process(
        f"crm-standin-{crm}",
        [sys.executable, "-m", "tools", "crm-standin", "--crm", crm, "--port", str(port)],
        log=home / f"crm-standin-{crm}.log",
        ready=port_open("127.0.0.1", port),
        detach=True,
    )
    env = CRM_ENV[crm](url) | {
        "LEADSTREAM_CRM_PORT": str(health),
        "LEADSTREAM_CRM_START": "latest",  # a first demo writes this run's leads only
    }
    sync = leadstream(
        "crm-sync",
        log=home / f"crm-sync-{crm}.log",
        env=env,
        args=["--crm", crm],
        name=f"crm-sync-{crm}",
        detach=True,
    )
    return [standin, sync], env


async def crm_setup(crm: str, env: dict[str, str]) -> None:
    """``crm-sync --setup`` against the stand-in (HubSpot: the property group and
    properties; Salesforce: the field list), before crm-sync writes."""
    setup = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream_app",
        "crm-sync",
        "--crm",
        crm,
        "--setup",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(setup.communicate(), 120)
    if setup.returncode != 0:
        raise StackError(f"demo: crm-sync --setup failed:\n{out.decode()[-2000:]}")


async def print_crm(crm: str, run_id: str, home: Path) -> None:
    """What the stand-in holds for this run's leads: properties per contact (or Lead)."""
    port, _ = CRM_PORTS[crm]
    url = f"http://127.0.0.1:{port}/__standin/state"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        state = await response.json()
    key, first = (
        ("leadstream_lead_id", HUBSPOT_FIRST)
        if crm == "hubspot"
        else ("Leadstream_Lead_Id__c", SALESFORCE_FIRST)
    )
    mine = {
        rid: props
        for rid, props in state["records"].items()
        if str(props.get(key) or "").startswith(f"d{run_id}-")
    }
    ranked = sorted(mine.items(), key=lambda kv: -float(_score(crm, kv[1])))
    path = home / f"crm-{crm}-{run_id}.json"
    path.write_text(json.dumps(mine, indent=2, sort_keys=True))
    stage_key = "lifecyclestage" if crm == "hubspot" else "Status"
    stages: dict[str, int] = {}
    for props in mine.values():
        stage = str(props.get(stage_key) or "(none)")
        stages[stage] = stages.get(stage, 0) + 1
    print(
        f"\nWhat {crm} would hold for this run's leads ({len(mine)} "
        f"{'contacts' if crm == 'hubspot' else 'Leads'}; {state['writes']} writes, "
        f"{len(state['regressions'])} older-over-newer, {len(state['refusals'])} refused by "
        f"validation; all in {path}). {stage_key}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(stages.items()))
        + ". The 10 highest scores:",
        file=sys.stderr,
    )
    for line in render(dict(ranked[:10]), first):
        print(f"  {crm}> {line}", flush=True)


def _score(crm: str, props: dict[str, Any]) -> float:
    value = props.get("leadstream_score" if crm == "hubspot" else "Leadstream_Score__c")
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


async def run_demo(
    settings: Settings, prospects: int, seed: int, quiet_s: float, crm: str | None = None
) -> int:
    rules = load_rules(settings.rules_path)
    run_id = uuid.uuid4().hex[:6]
    topics = TopicNames.of(settings)
    # A short decay sweep, so the demo shows leads going cold within its run.
    sweep = {"LEADSTREAM_SWEEP_INTERVAL_SECONDS": "5"}
    if "LEADSTREAM_SWEEP_INTERVAL_SECONDS" in os.environ:
        sweep = {}
    home = demo_dir()
    sink_log = home / "sink.jsonl"
    home.mkdir(parents=True, exist_ok=True)
    # The settings' own ports, so `python -m stream_app health` finds the worker and the API.
    processes = [
        leadstream(
            "worker",
            log=home / "worker.log",
            env={**sweep, "LEADSTREAM_WORKER_PORT": str(settings.worker_port)},
            detach=True,
        ),
        leadstream(
            "api",
            log=home / "api.log",
            env={"LEADSTREAM_API_PORT": str(settings.api_port)},
            detach=True,
        ),
        leadstream(
            "sink",
            log=home / "sink.log",
            args=["--port", str(SINK_PORT), "--out", str(sink_log), "--quiet"],
            detach=True,
        ),
        leadstream(
            "notify",
            log=home / "notify.log",
            env={
                "LEADSTREAM_NOTIFY_KIND": "slack",
                "LEADSTREAM_NOTIFY_URL": f"http://127.0.0.1:{SINK_PORT}/services/demo",
                "LEADSTREAM_NOTIFY_START": "latest",  # a first demo posts this run only
                "LEADSTREAM_NOTIFY_LINK_TEMPLATE": "https://crm.example.com/leads/{lead_id}",
            },
            detach=True,
        ),
    ]
    if crm is not None:
        crm_side, crm_env = crm_processes(crm, home)
        _start_background(crm_side[0])
        await _until_ready(crm_side[0])
        await crm_setup(crm, crm_env)
        processes += crm_side[1:]
    for process in processes:
        _start_background(process)
    for process in processes:
        await _until_ready(process)
    print(
        f"dashboard: http://{settings.api_host}:{settings.api_port}/ui/ "
        "(open it now: the transitions below arrive there live)",
        file=sys.stderr,
        flush=True,
    )
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

        # the last 120 days, up to now: the worker dead-letters an event dated after it
        # reached it (LEADSTREAM_MAX_CLOCK_SKEW_SECONDS), and the generator runs on past today
        now = datetime.now(UTC)
        events = [
            event
            for event in generate(
                prospects, seed, start=now - timedelta(days=120), id_prefix=f"d{run_id}-"
            )
            if datetime.fromisoformat(event["occurred_at"]) <= now
        ]
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

    await asyncio.sleep(6)  # the projection, the notifier and crm-sync catch up
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
    if crm is not None:
        await print_crm(crm, run_id, home)
    print(f"\nthe dashboard: {api}/ui/", file=sys.stderr)
    print(
        "\nThe worker, the API, the notifier and its sink"
        + (f", crm-sync and the {crm} stand-in" if crm else "")
        + f" keep running (logs in {home}). "
        f"Explore the API at {api}/openapi.json; `python -m tools demo --stop` stops "
        f"them, `make stack-down` stops everything.",
        file=sys.stderr,
    )
    return 0


def main(prospects: int = 300, seed: int = 7, quiet_s: float = 15, crm: str | None = None) -> int:
    return asyncio.run(run_demo(Settings(), prospects, seed, quiet_s, crm))
