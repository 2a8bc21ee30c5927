"""The fault scenarios (``make faults``; the quick subset runs in ``make test``).

Each test is one run of one scenario: start the worker on fresh topics,
produce the seeded events, inject the fault at a point drawn from the run's
seed, recover, and check every invariant against the offline replay (see
``harness.FaultRun``). ``FAULTS_RUNS`` sets how many runs of the repeated
scenarios ``make faults`` does (default 10 for kill -9); ``FAULTS_PROSPECTS``
the traffic size (default 1,500 prospects, about 15,000 events).

Quick tests (no ``faults`` marker) run in ``make test`` and in ``make faults``:
here a short Redis outage, the hostile input and the bad rules file; one
kill -9 and one SIGTERM run are in tests/integration/test_worker_crash.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from stream_app.config import Settings
from stream_app.scoring.rules import Rules
from tests.factories import REPO
from tests.faults.harness import FaultRun, Outcome, kill_process, stack_pid, stack_up
from tools.devstack import Kafka, StackSettings, brokers, ensure_up, stop, stop_together, up

pytestmark = pytest.mark.integration
RUNS = int(os.environ.get("FAULTS_RUNS", "10"))


def assert_clean(outcome: Outcome) -> None:
    assert not outcome.problems, outcome
    assert outcome.lost == 0 and outcome.unexpected == 0


async def run_scenario(
    run: FaultRun,
    settings: Settings,
    progress: float | None,
    fault: Callable[[], Awaitable[None]] | None = None,
    workers: int = 1,
) -> Outcome:
    """Start, produce everything, inject ``fault`` once ``progress`` of the transitions are
    out (mid-processing), wait until the group caught up, verify."""
    for n in range(1, workers + 1):
        run.worker(n)
    await run.prepare_topics()
    for w in run.workers:
        w.start()
    watcher = asyncio.create_task(run.watch())
    try:
        await run.produce()
        if fault is not None and progress is not None:
            await run.at_progress(progress)
            await fault()
        await run.wait_caught_up()
        outcome = await run.verify(settings.redis_url)
    finally:
        watcher.cancel()
        run.stop_all()
    return outcome


# --- 1. the worker killed (-9) at random points, or stopped gracefully ------------------


@pytest.mark.faults
@pytest.mark.parametrize("n", range(RUNS))
async def test_kill9_at_a_random_point(
    n: int, tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    run = FaultRun("worker kill -9", n, tmp_path, kafka_bootstrap, rules)
    point = run.rng.uniform(0.1, 0.9)

    async def fault() -> None:
        await asyncio.sleep(run.rng.uniform(0, 1))
        worker = run.workers[0]
        worker.stop(signal.SIGKILL)
        run.fault_end = time.time()
        worker.start()

    outcome = await run_scenario(run, settings, point, fault)
    assert_clean(outcome)


@pytest.mark.faults
@pytest.mark.parametrize("n", range(max(2, RUNS // 2)))
async def test_identity_merges_under_kill9(
    n: int, tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    """Anonymous browsing, identifies, more browsing, keyed by subject; killed at random
    points, claims and absorbs in flight: every merge once, transitions the oracle's."""
    run = FaultRun(
        "identity merges, worker kill -9", n, tmp_path, kafka_bootstrap, rules, identities=True
    )
    point = run.rng.uniform(0.1, 0.9)

    async def fault() -> None:
        await asyncio.sleep(run.rng.uniform(0, 1))
        run.workers[0].stop(signal.SIGKILL)
        run.fault_end = time.time()
        run.workers[0].start()

    outcome = await run_scenario(run, settings, point, fault)
    assert_clean(outcome)


@pytest.mark.faults
@pytest.mark.parametrize("n", range(2))
async def test_sigterm_mid_stream_gives_no_duplicates(
    n: int, tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    run = FaultRun("worker SIGTERM (graceful)", n, tmp_path, kafka_bootstrap, rules)

    async def fault() -> None:
        run.workers[0].stop(signal.SIGTERM)
        run.fault_end = time.time()
        run.workers[0].start()

    outcome = await run_scenario(run, settings, run.rng.uniform(0.2, 0.8), fault)
    assert_clean(outcome)
    assert outcome.duplicated == 0, "a graceful stop commits what it processed"


# --- 2. the broker killed (-9) and restarted -------------------------------------------


@pytest.mark.faults
@pytest.mark.parametrize("n", range(2))
async def test_broker_hard_kill_and_restart(
    n: int, tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    run = FaultRun("Kafka broker kill -9, restart", n, tmp_path, kafka_bootstrap, rules)

    async def fault() -> None:
        kill_process(stack_pid("kafka"))
        await asyncio.sleep(5)
        await asyncio.to_thread(stack_up)
        run.fault_end = time.time()

    outcome = await run_scenario(run, settings, run.rng.uniform(0.2, 0.7), fault)
    assert_clean(outcome)


@pytest.mark.faults
async def test_broker_down_for_30_seconds(
    tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    run = FaultRun(
        "Kafka broker stopped 30 s", 0, tmp_path, kafka_bootstrap, rules, identities=True
    )

    async def fault() -> None:
        kill_process(stack_pid("kafka"), signal.SIGTERM)
        await asyncio.sleep(30)
        await asyncio.to_thread(stack_up)
        run.fault_end = time.time()

    outcome = await run_scenario(run, settings, run.rng.uniform(0.2, 0.6), fault)
    assert_clean(outcome)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    """A three-broker KRaft cluster of the local stack's kind (``LEADSTREAM_STACK_BROKERS=3``)
    on its own ports and directory, beside the stack the other scenarios use."""
    shared = StackSettings()
    cfg = StackSettings(
        dir=tmp_path_factory.mktemp("cluster"),
        kafka_port=29092,
        controller_port=29093,
        redis_port=shared.redis_port,
        brokers=3,
    )
    lib = Kafka(shared).lib
    if lib.exists():  # the jars `make stack-up` resolved: no second download
        (cfg.dir / "kafka").mkdir()
        (cfg.dir / "kafka" / lib.name).symlink_to(lib)
    up(cfg)  # Redis is the shared one: it answers, and is left alone
    try:
        yield cfg
    finally:
        stop_together(list(brokers(cfg)))


@pytest.mark.faults
async def test_one_broker_of_three_killed_with_replication_3(
    cluster: StackSettings, tmp_path: Path, settings: Settings, rules: Rules
) -> None:
    """Every topic with three replicas and min.insync.replicas 2; one broker killed (-9)
    mid-stream and kept down for 20 s, then started again: nothing lost."""
    nodes = brokers(cluster)
    bootstrap = ",".join(f"127.0.0.1:{k.port}" for k in nodes)
    run = FaultRun(
        "one broker of three kill -9 (replication 3)",
        0,
        tmp_path,
        bootstrap,
        rules,
        identities=True,
        worker_env={"LEADSTREAM_REPLICATION_FACTOR": "3"},
    )

    async def fault() -> None:
        victim = nodes[run.rng.randrange(len(nodes))]
        stop(victim, hard=True)
        await asyncio.sleep(20)
        await asyncio.to_thread(ensure_up, victim)
        run.fault_end = time.time()

    outcome = await run_scenario(run, settings, run.rng.uniform(0.2, 0.6), fault)
    assert_clean(outcome)


# --- 3. Redis stopped for 30 s -----------------------------------------------------------


async def redis_outage(run: FaultRun, settings: Settings, seconds: float) -> None:
    """Stop the stack's redis-server, start it again; recovery: until the projection writes."""
    kill_process(stack_pid("redis"), signal.SIGTERM)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(stack_up)
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await time_projection_resumes(run, client)
    finally:
        await client.aclose()


async def time_projection_resumes(run: FaultRun, client: aioredis.Redis) -> None:
    """Recovery after a Redis fault: seconds from now until the projection writes a new lead."""
    back = time.monotonic()
    leads = f"{run.workers[0].env['LEADSTREAM_REDIS_KEY_PREFIX']}leads"
    before = await client.scard(leads)
    while time.monotonic() - back < 120:
        if await client.scard(leads) != before:
            run.outcome.recovery_s = round(time.monotonic() - back, 1)
            return
        await asyncio.sleep(0.1)


@pytest.mark.faults
async def test_redis_down_for_30_seconds(
    tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    run = FaultRun("Redis stopped 30 s", 0, tmp_path, kafka_bootstrap, rules)
    outcome = await run_scenario(run, settings, 0.3, lambda: redis_outage(run, settings, 30))
    assert_clean(outcome)


async def cut_redis_clients(run: FaultRun, settings: Settings, seconds: float) -> None:
    """For ``seconds``, drop every client connection of the Redis server, over and over.

    The quick variant works on any Redis the tests talk to (the stack may have
    been started by another checkout): the server stays up and keeps its data,
    while the worker's writes fail with connection errors and go through their
    retry path. Recovery: from the end of the cut until the projection writes.
    """
    admin = aioredis.Redis.from_url(settings.redis_url)
    try:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            await asyncio.sleep(0.02)
        await time_projection_resumes(run, admin)
    finally:
        await admin.aclose()


async def test_quick_redis_outage(
    tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    """Quick subset: Redis connections cut for 5 s mid-stream; the projection catches up."""
    run = FaultRun(
        "Redis connections cut 5 s (quick)", 0, tmp_path, kafka_bootstrap, rules, prospects=300
    )
    outcome = await run_scenario(run, settings, 0.3, lambda: cut_redis_clients(run, settings, 5))
    assert_clean(outcome)
    assert "Redis unavailable" in run.workers[0].log_text(), "the cut did not reach the worker"


# --- 4. rebalances: a second worker joins, then one of two is killed ------------------


@pytest.mark.faults
@pytest.mark.parametrize("n", range(2))
async def test_second_worker_joins_then_one_is_killed(
    n: int, tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    run = FaultRun(
        "rebalance: 2nd worker joins, then one killed", n, tmp_path, kafka_bootstrap, rules
    )

    async def fault() -> None:
        second = run.worker(2)
        second.start()
        await asyncio.sleep(run.rng.uniform(8, 15))
        run.retire(run.workers[run.rng.randrange(2)], signal.SIGKILL)
        run.fault_end = time.time()

    outcome = await run_scenario(run, settings, run.rng.uniform(0.1, 0.4), fault)
    assert_clean(outcome)


@pytest.mark.faults
@pytest.mark.parametrize("identities", [False, True], ids=["lead-keyed", "identity traffic"])
async def test_three_workers_join_and_leave(
    identities: bool, tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    """Two more workers join one by one, then one leaves gracefully and one is killed.

    With identity traffic, a claim crossing to a partition whose inputs lag
    behind (a joining worker restoring) would overtake the visitor's earlier
    events if it were not held until those inputs are read up to its time
    (stream_app/worker/ordering.py; finding 8 in docs/reliability.md)."""
    kind = "identity traffic" if identities else "lead-keyed"
    run = FaultRun(
        f"rebalance: 3 workers join, one stops, one killed ({kind})",
        0,
        tmp_path,
        kafka_bootstrap,
        rules,
        identities=identities,
    )

    async def fault() -> None:
        for n in (2, 3):
            run.worker(n).start()
            await asyncio.sleep(run.rng.uniform(5, 10))
        run.retire(run.workers[1], signal.SIGTERM)
        await asyncio.sleep(run.rng.uniform(3, 8))
        run.retire(run.workers[run.rng.randrange(len(run.workers))], signal.SIGKILL)
        run.fault_end = time.time()

    outcome = await run_scenario(run, settings, run.rng.uniform(0.05, 0.2), fault)
    assert_clean(outcome)


# --- 5. the same events twice, and out of order ------------------------------------------


@pytest.mark.faults
async def test_duplicated_and_reordered_delivery(
    tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    run = FaultRun(
        "events delivered twice and out of order",
        0,
        tmp_path,
        kafka_bootstrap,
        rules,
        duplicate=True,
        shuffle=True,
    )
    outcome = await run_scenario(run, settings, None)
    assert_clean(outcome)


# --- 6. hostile input into every input topic; a bad rules file -------------------------


async def test_hostile_input_in_every_topic(
    tmp_path: Path, kafka_bootstrap: str, settings: Settings, rules: Rules
) -> None:
    run = FaultRun(
        "hostile input in every input topic",
        0,
        tmp_path,
        kafka_bootstrap,
        rules,
        prospects=300,
        hostile=True,
    )
    outcome = await run_scenario(run, settings, None)
    assert_clean(outcome)
    assert outcome.dead_letters_found == outcome.dead_letters_expected == len(run.bad)
    assert "Traceback" not in run.workers[0].log_text()


def test_a_rules_file_with_errors_stops_the_worker_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\nfit:\n  - id: x\n    points: lots\n")
    done = subprocess.run(
        [sys.executable, "-m", "stream_app", "worker"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LEADSTREAM_RULES_PATH": str(bad)},
        timeout=60,
    )
    assert done.returncode == 2
    assert str(bad) in done.stderr and "Traceback" not in done.stderr
