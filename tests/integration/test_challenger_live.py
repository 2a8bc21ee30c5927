"""A champion and a challenger worker on the same live traffic (issue 28, item 5).

The champion scores with rules/default.yaml; ``python -m stream_app challenger``
reads the champion's input topic with a changed file under names derived from
the champion's settings. ``compare`` over their two live transition topics must
report what ``compare`` reports over their offline ``simulate`` outputs for the
same events, figure for figure; the challenger's own projection must hold its
leads, and the API's /funnels shows both funnels and /outcomes the drift counts.

Traffic is generated with sales feedback (``tools.outcomes``), lead-keyed and
on one input topic (as the fault harness feeds it), so each lead's order is
fixed end to end and the offline replay is an exact oracle.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer

from stream_app.commands.cli import main
from stream_app.config import Settings
from stream_app.outcomes.proposal import Lines, rewrite
from stream_app.rules_file import load_rules
from stream_app.serve.api.app import create_api
from stream_app.serve.stores.projection import RedisProjection
from tests.factories import DEFAULT_RULES
from tests.integration.live import WorkerProcess, collect
from tools.launch import Process, free_port, http_ready
from tools.outcomes import with_outcomes

pytestmark = pytest.mark.integration
PROSPECTS, SEED = 250, 3
NAME = "shadow"


def lead_keyed(prefix: str) -> list[dict[str, Any]]:
    """The traffic with its sales feedback, every event on its lead (as tests/faults)."""
    out = []
    for original in with_outcomes(PROSPECTS, SEED, id_prefix=prefix):
        event = dict(original)
        anon = event.pop("anonymous_id", None)
        if anon is not None:
            event["lead_id"] = anon.replace("anon-", "lead-")
        if event["type"] == "identify":
            traits = event.pop("traits", {})
            event = {**event, "type": "profile_update", **traits}
        out.append(event)
    return out


def challenger_file(folder: Path) -> Path:
    """rules/default.yaml with other points and lines, as learn would write it."""
    text = DEFAULT_RULES.read_text()
    rules = load_rules(DEFAULT_RULES)
    points = {r.id: r.points for r in rules.spec.engagement.rules}
    points.update({s.id: s.points for s in rules.spec.signals})
    points.update({r.id: r.points for r in rules.spec.fit.rules})
    points.update({"case_study_page": 40, "pricing_page": 30, "blog_view": 1, "manager_title": 0})
    path = folder / "challenger.yaml"
    path.write_text(rewrite(text, rules, points, "challenger-test", Lines(70, 110, 50)))
    return path


def offline(rules: Path, events: Path, out: Path) -> int:
    assert main(["simulate", "--rules", str(rules), str(events), "--out", str(out), "--quiet"]) == 0
    return sum(1 for line in out.read_text().splitlines() if line.strip())


async def test_compare_over_the_live_topics_equals_compare_over_their_simulate_outputs(
    kafka_bootstrap: str,
    tmp_path: Path,
    redis_client: aioredis.Redis,  # fails the test when Redis does not answer
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = uuid.uuid4().hex[:8]
    events = lead_keyed(f"ch{run}-")
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert any(e["type"] == "sales_feedback" for e in events)
    rules_b = challenger_file(tmp_path)
    expected_a = offline(DEFAULT_RULES, events_file, tmp_path / "a.jsonl")
    expected_b = offline(rules_b, events_file, tmp_path / "b.jsonl")

    champion = WorkerProcess(run, tmp_path, LEADSTREAM_INPUT_TOPICS=f"t{run}.events")
    port = free_port()
    challenger = Process(
        "challenger",
        [sys.executable, "-m", "stream_app", "challenger", "--rules", str(rules_b)],
        log=tmp_path / "challenger.log",
        env={**champion.env, "LEADSTREAM_CHALLENGER": NAME},
        ready=http_ready(f"http://127.0.0.1:{port}/ready"),
    )
    challenger.argv += ["--port", str(port)]
    champion.start()
    try:
        challenger.start()
        await challenger.wait_ready_async(120)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            for event in events:
                value = json.dumps(event).encode()
                await producer.send(f"t{run}.events", key=event["lead_id"].encode(), value=value)
            await producer.flush()
        finally:
            await producer.stop()
        names = champion.names
        theirs = f"t{run}.{NAME}.lead_stage_transitions"
        live_a = await collect(kafka_bootstrap, [names.transitions], until=expected_a, limit_s=240)
        live_b = await collect(kafka_bootstrap, [theirs], until=expected_b, limit_s=240)
        assert len({json.loads(v)["transition_id"] for v in live_a}) == expected_a
        assert len({json.loads(v)["transition_id"] for v in live_b}) == expected_b

        live_json, offline_json = tmp_path / "live.json", tmp_path / "offline.json"
        argv = ["compare", f"kafka:{names.transitions}", f"kafka:{theirs}", "--quiet"]
        # compare reads the topics with asyncio.run: in a thread of its own, as on a shell
        assert await asyncio.to_thread(main, [*argv, "--json", str(live_json)]) == 0
        files = ["compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
        assert main([*files, "--json", str(offline_json)]) == 0
        printed = capsys.readouterr().out
        live, off = json.loads(live_json.read_text()), json.loads(offline_json.read_text())
        assert live == off, printed
        assert live["a"]["mql"] != live["b"]["mql"] or live["mql"]["only_b"], live
        print(printed)  # the comparison, for the record (pytest -s)

        # Each projection holds its own run: the API shows both funnels, and the drift.
        settings = Settings(
            redis_key_prefix=champion.env["LEADSTREAM_REDIS_KEY_PREFIX"], challenger=NAME
        )
        # fresh connections: the fixture's has been idle for minutes while the workers ran
        fresh = aioredis.Redis.from_url(settings.redis_url)
        ours = RedisProjection(fresh, settings.redis_key_prefix)
        shadow = RedisProjection(fresh, settings.challenger_key_prefix)
        app = create_api(settings, ours, 3, challenger=shadow, challenger_name=NAME)
        app.on_cleanup.clear()
        async with TestClient(TestServer(app)) as client:
            for _ in range(100):  # the projectors trail their workers a little
                body = await (await client.get("/funnels")).json()
                if body["challenger"] and (
                    body["champion"]["reached_mql"],
                    body["challenger"]["reached_mql"],
                ) == (live["a"]["mql"], live["b"]["mql"]):
                    break
                await asyncio.sleep(0.3)
            assert body["challenger_name"] == NAME
            assert body["champion"]["reached_mql"] == live["a"]["mql"], body
            assert body["challenger"]["reached_mql"] == live["b"]["mql"], body
            drift = await (await client.get("/outcomes")).json()
            print(json.dumps(drift))  # for the record (pytest -s)
            counted = sum(band[o] for band in drift["bands"] for o in ("won", "lost"))
            assert counted > 0, drift
            metrics = await (await client.get("/metrics")).text()
            assert "leadstream_outcomes_90d{" in metrics
        await fresh.aclose()
    finally:
        challenger.stop()
        champion.stop()
        cleanup = aioredis.Redis.from_url(Settings().redis_url)
        prefix = champion.env["LEADSTREAM_REDIS_KEY_PREFIX"]  # the challenger's is under it
        keys = [k async for k in cleanup.scan_iter(match=f"{prefix}*")]
        if keys:
            await cleanup.delete(*keys)
        await cleanup.aclose()
    for process in (champion, challenger):
        assert "Traceback" not in process.log_text(), process.log_text()[-4000:]
