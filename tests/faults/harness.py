"""The fault harness: the real worker as a process, a fixed seeded event set, one fault.

A ``FaultRun`` owns uuid-named topics, a consumer group, a Redis key prefix and
one or more ``python -m stream_app worker`` processes. It produces the events,
lets a scenario inject its fault, waits until the worker group has committed
every input and internal offset, and then checks the invariants against the
offline replay of the same delivered sequence (the oracle):

- every transition of the oracle was published (none lost), none it lacks;
- duplicates, if any, are exact copies (same ``transition_id``);
- the Redis projection (stage, scores, version per lead) and the funnel
  counters equal the oracle's;
- every injected bad message is in the dead-letter topic with its reason, and
  no good event is.

Traffic is lead-keyed (see ``lead_keyed``) and produced to one input topic, so
per-lead order is fixed end to end and the replay is an exact oracle without
lock-step feeding. Every run appends a line to ``FAULTS_REPORT`` (default
``.stack/faults-report.jsonl``); ``python -m tests.faults.report`` renders the
table of docs/reliability.md from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.harness import Kafka
from schemas.dead_letter import DeadLetter
from schemas.events import parse_event
from schemas.transitions import StageTransition
from stream_app.scoring.engine import score_update
from stream_app.scoring.funnel import funnel
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.serve.stores.projection import RedisProjection
from tests.factories import REPO
from tests.integration.live import WorkerProcess, collect
from tools.pids import PidFile, is_zombie
from tools.traffic import generate

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[a-z]{2,}")
PROSPECTS = int(os.environ.get("FAULTS_PROSPECTS", "1500"))
REPORT = Path(os.environ.get("FAULTS_REPORT", str(REPO / ".stack" / "faults-report.jsonl")))
STACK = [sys.executable, "-m", "tools", "stack"]


def lead_keyed(prefix: str, prospects: int, seed: int) -> list[dict[str, Any]]:
    """Generated traffic with every event on its lead: anonymous ids become the lead's id
    and identifies become profile updates (hand-raises, decay and demotions stay)."""
    out = []
    for original in generate(prospects, seed, id_prefix=prefix):
        event = dict(original)
        anon = event.pop("anonymous_id", None)
        if anon is not None:
            event["lead_id"] = anon.replace("anon-", "lead-")
        if event["type"] == "identify":
            traits = event.pop("traits", {})
            event = {**event, "type": "profile_update", **traits}
        out.append(event)
    return out


def hostile_messages(tag: str) -> list[tuple[bytes, str]]:
    """(value, expected dead-letter reason) for each kind of bad input."""
    far = {
        "type": "page_view",
        "event_id": f"{tag}-far",
        "lead_id": f"{tag}-x",
        "occurred_at": "2999-01-01T00:00:00Z",
        "url": "https://x.com/",
    }
    past = {**far, "event_id": f"{tag}-past", "occurred_at": "1800-01-01T00:00:00Z"}
    huge = {
        **far,
        "event_id": f"{tag}-huge",
        "occurred_at": "2026-10-05T09:00:00Z",
        "url": "https://x.com/" + "a" * 200_000,
    }
    wrong = {**far, "event_id": 12, "occurred_at": "yesterday"}
    return [
        (b"not json at all", "not_json"),
        (b"\xff\xfe\x00garbage", "not_utf8"),
        (json.dumps(wrong).encode(), "invalid"),
        (b'{"type": "mind_reading", "event_id": "m1", "lead_id": "x"}', "unknown_type"),
        (
            b'{"type": "page_view", "event_id": "m2", "occurred_at": "2026-10-05T09:00:00Z"}',
            "invalid",
        ),
        (b"{" * 10 + b"x" * 10_000_000 + b"}" * 10, "too_large"),  # 10 MB
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "too_deep"),
        (json.dumps(far).encode(), "invalid"),
        (json.dumps(past).encode(), "invalid"),
        (json.dumps(huge).encode(), "invalid"),
    ]


@dataclass
class Outcome:
    """One run's figures, as they go into the report table."""

    scenario: str
    run: int
    events: int
    transitions_expected: int
    transitions_emitted: int = 0
    lost: int = 0
    unexpected: int = 0
    duplicated: int = 0
    dead_letters_expected: int = 0
    dead_letters_found: int = 0
    recovery_s: float | None = None
    worker_restarts: int = 0
    problems: list[str] = field(default_factory=list)
    at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"))


class FaultRun:
    def __init__(
        self,
        scenario: str,
        run: int,
        tmp: Path,
        bootstrap: str,
        rules: Rules,
        *,
        prospects: int = PROSPECTS,
        seed: int = 7,
        duplicate: bool = False,
        shuffle: bool = False,
        hostile: bool = False,
        identities: bool = False,
        worker_env: dict[str, str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.run_id = uuid.uuid4().hex[:8]
        self.tmp = tmp
        self.bootstrap = bootstrap
        self.rules = rules
        self.worker_env = {"LEADSTREAM_KAFKA_BOOTSTRAP": bootstrap, **(worker_env or {})}
        self.rng = random.Random(f"{scenario}-{run}-{seed}")
        if identities:  # anonymous browsing, identifies, merges: keyed by subject
            events = list(generate(prospects, seed + run, id_prefix=f"f{self.run_id}-"))
        else:
            events = lead_keyed(f"f{self.run_id}-", prospects, seed + run)
        delivered = list(events)
        if duplicate:  # at-least-once producers: every event again, some while it is fresh
            delivered += [e for e in events if self.rng.random() < 0.3]
        if shuffle:  # clock skew: neighbours swap places, event times stay as they are
            for n in range(0, len(delivered) - 1, 2):
                if self.rng.random() < 0.3:
                    delivered[n], delivered[n + 1] = delivered[n + 1], delivered[n]
        if duplicate:
            delivered += [e for e in events if self.rng.random() < 0.2]
        self.delivered = delivered
        self.bad = hostile_messages(self.run_id) if hostile else []
        self.outcome = Outcome(scenario, run, len(delivered), 0)
        self.workers: list[WorkerProcess] = []
        self._updates_at: list[float] = []
        self.fault_end: float | None = None  # wall clock, set by a scenario when its fault is over
        self.transitions_out = 0
        self.retired: list[WorkerProcess] = []  # workers a scenario killed for good
        self._oracle()

    # --- the oracle ---------------------------------------------------------------

    def _oracle(self) -> None:
        replay = Replay(self.rules)
        self.expected: dict[str, StageTransition] = {}
        for event in self.delivered:
            for t in replay.process(parse_event(json.dumps(event))).transitions:
                self.expected[t.transition_id] = t
        self.replay = replay
        self.outcome.transitions_expected = len(self.expected)
        self.outcome.dead_letters_expected = len(self.bad)

    # --- processes ------------------------------------------------------------------

    def worker(self, n: int = 1) -> WorkerProcess:
        """The n-th worker of this run (same group and topics, its own data directory)."""
        w = WorkerProcess(
            self.run_id,
            self.tmp / f"w{n}",
            LEADSTREAM_INSTANCE_ID=f"{self.run_id}-{n}",
            **self.worker_env,
        )
        (self.tmp / f"w{n}").mkdir(exist_ok=True)
        self.workers.append(w)
        return w

    @property
    def names(self) -> Any:
        return self.workers[0].names

    def retire(self, worker: WorkerProcess, sig: int) -> None:
        """Stop ``worker`` with ``sig`` for good: it leaves the run's workers."""
        worker.stop(sig)
        self.workers.remove(worker)
        self.retired.append(worker)

    def supervise(self) -> None:
        """Restart any worker that exited on its own (a process supervisor's job)."""
        for w in self.workers:
            if (status := w.returncode) is not None:
                self.outcome.worker_restarts += 1
                self.outcome.problems.append(f"worker exited with {status}; restarted")
                w.stop()  # reaped already: only forgets the process
                w.start()

    # --- traffic ----------------------------------------------------------------------

    async def prepare_topics(self) -> None:
        """Input topics that accept a 10 MB message (the broker default is 1 MB)."""
        if not self.bad:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=3,
                        replication_factor=1,
                        topic_configs={"max.message.bytes": str(12 * 2**20)},
                    )
                    for name in self.names.inputs
                ]
            )
        finally:
            await admin.close()

    async def produce(self) -> None:
        """All events to one input topic keyed by subject, the hostile messages spread over
        every input topic."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, max_request_size=12 * 2**20
        )
        await producer.start()
        try:
            topic = self.names.input_for("page_view")
            bad_at = {
                int(len(self.delivered) * (n + 1) / (len(self.bad) + 1)): b
                for n, b in enumerate(self.bad)
            }
            inputs = self.names.inputs
            for n, event in enumerate(self.delivered):
                if n in bad_at:
                    value, _ = bad_at[n]
                    bad_topic = inputs[n % len(inputs)]
                    await producer.send_and_wait(bad_topic, key=f"bad-{n}".encode(), value=value)
                subject = event.get("lead_id") or event["anonymous_id"]  # RudderStack's key
                await producer.send(topic, key=subject.encode(), value=json.dumps(event).encode())
            await producer.flush()
        finally:
            await producer.stop()

    async def watch(self) -> None:
        """Counts transitions as they come out; notes when score updates were produced."""
        consumer = AIOKafkaConsumer(
            self.names.score_updates,
            self.names.transitions,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            while True:
                with contextlib.suppress(Exception):
                    batch = await consumer.getmany(timeout_ms=200)
                    for tp, records in batch.items():
                        if tp.topic == self.names.transitions:
                            self.transitions_out += len(records)
                        else:  # when the worker produced it (CreateTime), not when it arrived
                            self._updates_at += [r.timestamp / 1000 for r in records]
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def at_progress(self, fraction: float, limit_s: float = 300) -> None:
        """Until ``fraction`` of the oracle's transitions are out (mid-processing)."""
        deadline = time.monotonic() + limit_s
        while self.transitions_out < fraction * len(self.expected):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.scenario}: only {self.transitions_out} transitions")
            await asyncio.sleep(0.1)

    def recovered_after(self, fault_end: float) -> None:
        """Seconds from the fault's end to the first score update produced after it."""
        later = [t for t in self._updates_at if t >= fault_end]
        if later:
            self.outcome.recovery_s = round(min(later) - fault_end, 1)

    async def wait_caught_up(self, limit_s: float = 600) -> None:
        group = f"ls-{self.run_id}"
        topics = [*self.names.inputs, self.names.repartition(group)]
        deadline = time.monotonic() + limit_s
        async with Kafka() as kafka:  # the local broker (127.0.0.1:9092)
            while True:
                self.supervise()
                with contextlib.suppress(Exception):
                    if await kafka.lag(group, topics) == 0:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.scenario}: not caught up in {limit_s:.0f}s")
                await asyncio.sleep(1)

    # --- the verdict ------------------------------------------------------------------

    async def verify(self, redis_url: str) -> Outcome:
        out = self.outcome
        live = [
            StageTransition.model_validate_json(r)
            for r in await everything_in(self.bootstrap, self.names.transitions)
        ]
        by_id: dict[str, StageTransition] = {}
        for t in live:
            if by_id.setdefault(t.transition_id, t) != t:
                out.problems.append(f"duplicate {t.transition_id} differs from its first copy")
        out.transitions_emitted = len(live)
        out.duplicated = len(live) - len(by_id)
        out.lost = len(self.expected.keys() - by_id.keys())
        out.unexpected = len(by_id.keys() - self.expected.keys())
        if out.lost or out.unexpected:
            out.problems.append(f"{out.lost} lost, {out.unexpected} not in the oracle")
        elif by_id != self.expected:
            out.problems.append("transitions differ from the oracle's in content")

        raw_letters = await everything_in(self.bootstrap, self.names.dead_letters)
        letters = [DeadLetter.model_validate_json(r) for r in raw_letters]
        unique = {(d.topic, d.partition, d.offset): d for d in letters}
        found: dict[bytes, str] = {d.raw: d.reason for d in unique.values()}  # first 64 KiB
        wanted = {value[: 64 * 1024]: reason for value, reason in self.bad}
        out.dead_letters_found = sum(1 for v, r in wanted.items() if found.get(v) == r)
        if out.dead_letters_found != len(wanted):
            out.problems.append(f"dead letters: wanted {wanted_summary(wanted, found)}")
        if len(unique) != len(wanted):
            out.problems.append(f"{len(unique)} dead letters for {len(wanted)} bad messages")

        await self._verify_projection(redis_url)
        for w in self.workers + self.retired:
            emails = EMAIL.findall(w.log_text())
            if emails:  # profile events carry e-mail addresses; logs must never show them
                out.problems.append(f"worker log shows e-mail addresses: {emails[:2]}")
        if self.fault_end is not None:
            self.recovered_after(self.fault_end)
        record(out)
        return out

    async def _verify_projection(self, redis_url: str) -> None:
        client = aioredis.Redis.from_url(redis_url)
        projection = RedisProjection(client, self.workers[0].env["LEADSTREAM_REDIS_KEY_PREFIX"])
        leads = [s for s in self.replay.leads()]
        try:
            wrong: list[str] = []
            for _ in range(60):  # the projection consumer trails the scoring a little
                wrong = []
                for state in leads:
                    view = await projection.lead(state.key)
                    want = score_update(state, self.rules)
                    got = None if view is None else (view["version"], view["stage"], view["scores"])
                    if got != (want.version, want.stage, want.scores.model_dump()):
                        wrong.append(state.key)
                if not wrong:
                    break
                await asyncio.sleep(1)
            if wrong:
                self.outcome.problems.append(
                    f"projection differs for {len(wrong)} leads: {wrong[:3]}"
                )
            want_funnel = funnel(leads)
            got_funnel = await projection.funnel()
            counts = (
                got_funnel["leads"],
                got_funnel["reached_mql"],
                got_funnel["reached_sql"],
                {k: v for k, v in got_funnel["stages"].items() if v},
            )
            oracle = (
                want_funnel.leads,
                want_funnel.reached_mql,
                want_funnel.reached_sql,
                {k: v for k, v in want_funnel.stages.items() if v},
            )
            if counts != oracle:
                self.outcome.problems.append(f"funnel {counts} != oracle {oracle}")
        finally:
            await client.aclose()

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()


async def everything_in(bootstrap: str, topic: str) -> list[bytes]:
    """Every record of ``topic`` from the start, once 3 s pass without news."""
    return await collect(bootstrap, [topic], until=0, limit_s=600)


def record(outcome: Outcome) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as f:
        f.write(json.dumps(asdict(outcome)) + "\n")


def wanted_summary(wanted: dict[bytes, str], found: dict[bytes, str]) -> str:
    return ", ".join(
        f"{v[:30]!r}: {r} -> {found.get(v, 'missing')}"
        for v, r in wanted.items()
        if found.get(v) != r
    )


# --- faults on the stack's own servers ------------------------------------------------


def stack_pid(name: str) -> int:
    """The pid of the server this checkout's ``stack up`` started; never anyone else's."""
    path = REPO / ".stack" / name / f"{name}.pid"
    pid = PidFile(path).live_pid()  # the recorded pid, if that very process still runs
    if pid is None:
        raise AssertionError(
            f"this scenario kills and restarts the local {name}, but the one running was not "
            f"started by this checkout (no live process recorded in {path}). Run it from the "
            "checkout whose `make stack-up` started the servers, or stop them first."
        )
    return pid


def stack_up() -> float:
    """``stack up`` (idempotent); seconds it took."""
    started = time.monotonic()
    subprocess.run([*STACK, "up"], cwd=REPO, check=True, capture_output=True)
    return time.monotonic() - started


def kill_process(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if is_zombie(pid):
            return
        time.sleep(0.1)
