"""A worker reloads its rules on SIGHUP, and scores as a `simulate` that switches there.

Marketing ops revise the rules quarterly; the worker must not be restarted for
it. The new file is validated first: a file with errors is refused, with the
same message `rules check` gives, and the rules in force stay. Events are fed
in lock-step so the switch falls between two known events; the live
transitions must equal `simulate --switch-rules LINE:PATH@TIME` exactly, TIME
being the reload's time the worker logs: at the switch every lead is
re-evaluated against the new lines, so a lead already over a lowered line is
promoted then, with no new event.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from schemas.transitions import StageTransition
from stream_app.commands.replay import run_simulation
from stream_app.rules_file import load_rules
from tests.factories import REPO
from tests.faults.harness import lead_keyed
from tests.integration.live import Lockstep, WorkerProcess, collect

pytestmark = pytest.mark.integration


async def wait_for_log(worker: WorkerProcess, text: str, limit_s: float = 30) -> None:
    for _ in range(int(limit_s * 10)):
        if text in worker.log_text():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker did not log {text!r}: {worker.log_path}")


async def wait_for_switch(worker: WorkerProcess, stamp: str, limit_s: float = 30) -> float:
    """The reload's switch time (as the worker logged it), once every lead's switch
    message was handled: the events fed after it then come after it for every lead."""
    await wait_for_log(worker, f"rules reloaded: {stamp}")
    found = re.search(
        rf"rules reloaded: {re.escape(stamp)}.*\(switch at ([0-9.]+)\)", worker.log_text()
    )
    assert found is not None, worker.log_path
    at = float(found.group(1))
    await wait_for_log(worker, f"rules switch at {at!r}: ")
    sent = re.search(rf"rules switch at {re.escape(repr(at))}: (\d+) lead", worker.log_text())
    assert sent is not None
    for _ in range(int(limit_s * 10)):
        handled = await worker.metric("leadstream_rules_switches_total")
        if handled is not None and handled >= int(sent.group(1)):
            return at
        await asyncio.sleep(0.1)
    raise AssertionError(f"the switch messages were not all handled: {worker.log_path}")


async def test_sighup_reloads_the_rules_between_two_events(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    before = yaml.safe_load((REPO / "rules" / "default.yaml").read_text())
    after = json.loads(json.dumps(before))  # a deep copy
    after["version"] = "2027.q1-test"
    after["stages"]["mql"]["min_total"] = 35  # the quarter's review: an easier MQL
    after["stages"]["sql"]["min_total"] = 70
    after["stages"]["recycle"]["below_total"] = 25  # still below the new MQL line
    original = tmp_path / "original.yaml"  # the file's first text (its stamp is its hash)
    original.write_text(yaml.safe_dump(before, sort_keys=False))
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(original.read_text())
    revised = tmp_path / "revised.yaml"
    revised.write_text(yaml.safe_dump(after, sort_keys=False))

    run_id = uuid.uuid4().hex[:8]
    events = lead_keyed(f"r{run_id}-", prospects=25, seed=9)
    switch = len(events) // 2
    worker = WorkerProcess(run_id, tmp_path, LEADSTREAM_RULES_PATH=str(rules_path))
    worker.start()
    try:
        async with Lockstep(kafka_bootstrap, worker) as feed:
            for event in events[:switch]:
                await feed.feed(event)
            rules_path.write_text("version: 1\nfit:\n  - id: x\n    points: lots\n")
            assert worker.proc is not None
            worker.proc.send_signal(signal.SIGHUP)
            await wait_for_log(worker, "rules reload refused")
            rules_path.write_text(revised.read_text())
            worker.proc.send_signal(signal.SIGHUP)
            at = await wait_for_switch(worker, "2027.q1-test")
            for event in events[switch:]:
                await feed.feed(event)
        out = io.StringIO()
        source = tmp_path / "events.jsonl"
        source.write_text("".join(json.dumps(e) + "\n" for e in events))
        summary = run_simulation(
            load_rules(original),
            str(source),
            out,
            quiet=True,
            switches=[(switch + 1, load_rules(revised), at)],
        )
        lines = out.getvalue().splitlines()
        expected = [StageTransition.model_validate_json(line) for line in lines]
        raw = await collect(
            kafka_bootstrap, [worker.names.transitions], until=len(expected), quiet=3
        )
    finally:
        worker.stop()

    live = {t.transition_id: t for t in map(StageTransition.model_validate_json, raw)}
    assert live == {t.transition_id: t for t in expected}
    versions = {t.rules_version for t in expected}
    assert len(versions) == 2 and any(v.startswith("2027.q1-test") for v in versions), versions
    assert summary["rules_version"].startswith("2027.q1-test")
    log = worker.log_text()
    refusal = log.split("rules reload refused")[1]
    assert f"{rules_path}: version: Input should be a valid string" in refusal  # file, key
    assert "Traceback" not in log


async def test_sighup_that_lowers_the_line_promotes_a_waiting_lead_with_no_new_event(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    before = (REPO / "rules" / "default.yaml").read_text()
    line = "mql: {min_total: 60, min_fit: 20, min_engagement: 15}"
    assert line in before
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(before)
    revised = before.replace(line, line.replace("60", "50")).replace(
        'version: "', 'version: "lowered-'
    )
    run_id = uuid.uuid4().hex[:8]
    lead = f"w{run_id}"
    # fit 35 (senior_title 20 + company_size_target 15) + pricing 20 = 55: under 60, over
    # 50, an hour ago (the switch is at the reload's clock time: decay runs until then)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    events = [
        {
            "type": "profile_update",
            "event_id": f"{lead}-p",
            "occurred_at": hour_ago.isoformat(),
            "lead_id": lead,
            "job_title": "VP Marketing",
            "company_size": 400,
            "country": "US",
        },
        {
            "type": "page_view",
            "event_id": f"{lead}-v",
            "occurred_at": (hour_ago + timedelta(minutes=5)).isoformat(),
            "lead_id": lead,
            "path": "/pricing",
        },
    ]
    worker = WorkerProcess(run_id, tmp_path, LEADSTREAM_RULES_PATH=str(rules_path))
    worker.start()
    try:
        async with Lockstep(kafka_bootstrap, worker) as feed:
            for event in events:
                await feed.feed(event)
        assert not await collect(kafka_bootstrap, [worker.names.transitions], until=0, quiet=1)
        rules_path.write_text(revised)
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGHUP)
        at = await wait_for_switch(worker, "lowered-")
        raw = await collect(kafka_bootstrap, [worker.names.transitions], until=1, quiet=1)
    finally:
        worker.stop()

    [mql] = [StageTransition.model_validate_json(value) for value in raw]
    assert (mql.lead_id, mql.from_stage, mql.to_stage) == (lead, "lead", "mql")
    assert mql.rules_version.startswith("lowered-")
    assert (mql.triggering_event_id, mql.triggering_event_type) == (None, "rules_switch")
    assert mql.occurred_at.timestamp() == at  # the reload's time (after the events)
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = io.StringIO()
    original, lowered = tmp_path / "original.yaml", tmp_path / "lowered.yaml"
    original.write_text(before)
    lowered.write_text(revised)
    run_simulation(
        load_rules(original), str(source), out, quiet=True, switches=[(3, load_rules(lowered), at)]
    )
    assert [StageTransition.model_validate_json(x) for x in out.getvalue().splitlines()] == [mql]
    assert "Traceback" not in worker.log_text()
