"""crm-sync and collect's CRM webhooks on the real broker and Redis, against the HubSpot stand-in.

The stand-in (``tools.crm_standin.hubspot``) runs in this process on loopback,
reads every request strictly into hubspot-api-client's own models, and records
every write with the ``leadstream_version`` it carried: an older version written
over a newer one is a ``regression``. The worker, crm-sync and collect run as
processes (``tools.launch``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.transitions import Scores, ScoreUpdate
from stream_app.crm.webhooks import hubspot_signature
from tests.factories import at
from tests.integration.live import WorkerProcess
from tools.crm_standin.hubspot import HubSpotStandIn
from tools.launch import Process, leadstream

pytestmark = pytest.mark.integration

VP = {
    "email": "vp@acme.example.com",
    "job_title": "VP Marketing",
    "seniority": "vp",
    "industry": "software",
    "company_size": 500,
    "country": "US",
}
APP_SECRET = "test-app-secret"


@pytest.fixture
async def standin() -> AsyncIterator[HubSpotStandIn]:
    server = HubSpotStandIn()
    await server.start()
    yield server
    await server.stop()


def crm_env(standin: HubSpotStandIn, prefix: str, app_id: str, redis_prefix: str) -> dict[str, str]:
    return {
        "LEADSTREAM_TOPIC_PREFIX": prefix,
        "LEADSTREAM_APP_ID": app_id,
        "LEADSTREAM_REDIS_KEY_PREFIX": redis_prefix,
        "LEADSTREAM_HUBSPOT_TOKEN": standin.token,
        "LEADSTREAM_HUBSPOT_BASE_URL": standin.url,
        "LEADSTREAM_CRM_BATCH_SECONDS": "0.3",
        "LEADSTREAM_TOPIC_PARTITIONS": "3",
    }


async def until(condition: Callable[[], bool], limit_s: float, what: str, *logs: Process) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.log_text()[-2500:]}" for p in logs)
            raise AssertionError(f"{what}: not within {limit_s}s\n{tails}")
        await asyncio.sleep(0.2)


def journey(lead: str, recycle: bool) -> list[dict[str, Any]]:
    """lead -> MQL (its 1st pricing view) -> SQL (its 3rd) [-> recycled: sales rejects]."""
    n = iter(range(100))

    def e(kind: str, hours: float, **fields: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "event_id": f"{lead}-{next(n)}",
            "occurred_at": at(0, hours).isoformat(),
            "lead_id": lead,
            **fields,
        }

    out = [e("profile_update", 0, **VP)]
    out += [e("page_view", 0.1 * i + 0.1, path="/pricing", session_id=f"s{i}") for i in range(3)]
    out += [e("content_download", 1, asset_id="a1"), e("webinar", 1.5, action="attended")]
    out += [e("page_view", 2 + 0.1 * i, path="/product", session_id=f"t{i}") for i in range(4)]
    if recycle:
        out.append(e("sales_feedback", 5, outcome="rejected", reason="no budget"))
    return out


async def feed(worker: WorkerProcess, bootstrap: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            topic = worker.names.input_for(event["type"])
            await producer.send(topic, json.dumps(event).encode(), key=event["lead_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


def stages_written(standin: HubSpotStandIn, contact_id: str) -> list[str]:
    """The leadstream_stage values a contact was given, in order, repeats folded."""
    out: list[str] = []
    for w in standin.writes:
        stage = w.properties.get("leadstream_stage")
        if w.contact_id == contact_id and stage and (not out or out[-1] != stage):
            out.append(stage)
    return out


async def test_a_journey_reaches_the_crm_and_a_won_deal_comes_back_through_collect(
    kafka_bootstrap: str, standin: HubSpotStandIn, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    worker = WorkerProcess(run, tmp_path)
    env = crm_env(standin, worker.names.prefix, f"ls-{run}", f"ls:test:{run}:")
    setup = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream_app",
        "crm-sync",
        "--crm",
        "hubspot",
        "--setup",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(setup.communicate(), 60)
    assert setup.returncode == 0, err.decode()
    assert "property leadstream_lead_id: created" in out.decode()
    assert standin.properties["leadstream_lead_id"]["hasUniqueValue"]
    crm = leadstream("crm-sync", log=tmp_path / "crm.log", env=env, args=["--crm", "hubspot"])
    collect = leadstream(
        "collect",
        log=tmp_path / "collect.log",
        env={
            **env,
            "LEADSTREAM_COLLECT_WRITE_KEYS": "wk",
            "LEADSTREAM_HUBSPOT_APP_SECRET": APP_SECRET,
        },
    )
    worker.start()
    try:
        await crm.start().wait_ready_async(60)
        await collect.start().wait_ready_async(60)
        a, b = f"{run}-a", f"{run}-b"
        ja, jb = journey(a, recycle=False), journey(b, recycle=False)

        def stage_of(lead: str) -> str | None:
            return (standin.contact_by("leadstream_lead_id", lead) or {}).get("leadstream_stage")

        # step by step, as a lead's weeks go: each stage is in HubSpot before the next event
        await feed(worker, kafka_bootstrap, ja[:2] + jb[:2])
        await until(lambda: stage_of(a) == stage_of(b) == "mql", 90, "MQLs", worker, crm)
        contact_a = standin.contact_by("leadstream_lead_id", a)
        assert contact_a is not None and contact_a["lifecyclestage"] == "marketingqualifiedlead"
        await feed(worker, kafka_bootstrap, ja[2:] + jb[2:])
        await until(lambda: stage_of(a) == stage_of(b) == "sql", 90, "SQLs", worker, crm)
        assert contact_a["lifecyclestage"] == "salesqualifiedlead"
        await feed(worker, kafka_bootstrap, journey(a, recycle=True)[-1:])
        await until(
            lambda: contact_a.get("leadstream_stage") == "recycled", 60, "a recycled", worker, crm
        )
        a_id = contact_a["hs_object_id"]
        assert stages_written(standin, a_id) == ["mql", "sql", "recycled"]
        # HubSpot's lifecycle stage moves forward only: the recycled lead keeps SQL there,
        # and hs_lead_status says what happened (docs/crm.md)
        assert contact_a["lifecyclestage"] == "salesqualifiedlead"
        assert contact_a["hs_lead_status"] == "BAD_TIMING"
        assert contact_a["leadstream_reason"].startswith("sales_feedback")
        assert float(contact_a["leadstream_score"]) > 0 and contact_a["leadstream_grade"]

        # sales wins B's deal in HubSpot: the signed webhook reaches the worker through collect
        contact_b = standin.contact_by("leadstream_lead_id", b)
        assert contact_b is not None
        standin.deal_contacts["9001"] = [contact_b["hs_object_id"]]
        body = json.dumps(
            [
                {
                    "eventId": 7001,
                    "subscriptionId": 11,
                    "portalId": 62515,
                    "appId": 54321,
                    "occurredAt": int(time.time() * 1000) - 1000,
                    "subscriptionType": "deal.propertyChange",
                    "attemptNumber": 0,
                    "objectId": 9001,
                    "propertyName": "dealstage",
                    "propertyValue": "closedwon",
                    "changeSource": "CRM_UI",
                }
            ]
        )
        url = f"{collect.url}/v1/webhooks/hubspot"

        async def post(text: str, stamp: int, secret: str = APP_SECRET) -> tuple[int, Any]:
            headers = {
                "Content-Type": "application/json",
                "X-HubSpot-Request-Timestamp": str(stamp),
                "X-HubSpot-Signature-v3": hubspot_signature(secret, "POST", url, text, str(stamp)),
            }
            async with (
                aiohttp.ClientSession() as http,
                http.post(url, data=text, headers=headers) as r,
            ):
                return r.status, await r.json()

        now = int(time.time() * 1000)
        assert (await post(body, now, secret="wrong"))[0] == 401
        assert (await post(body, now - 6 * 60 * 1000))[0] == 401
        status, answer = await post(body, now)
        assert status == 200 and answer["accepted"] == 1, answer
        status, replay = await post(body, now)
        assert status == 200 and replay["duplicates"] == 1 and replay["accepted"] == 0
        await until(
            lambda: contact_b.get("leadstream_stage") == "customer",
            60,
            "b a customer",
            worker,
            crm,
            collect,
        )
        assert "won" in contact_b["leadstream_reason"]
        assert standin.regressions == []
        assert not standin.refusals, standin.refusals
    finally:
        collect.stop()
        crm.stop()
        worker.stop()
    for process in (crm, collect):
        text = process.log_text()
        assert "Traceback" not in text and "@acme.example.com" not in text, text[-3000:]
        assert standin.token not in text


def score_update(lead: str, version: int) -> bytes:
    update = ScoreUpdate(
        lead_id=lead,
        version=version,
        stage="mql" if version < 15 else "sql",
        scores=Scores(fit=20, engagement=version, total=20 + version, grade="B"),
        contributions=[],
        rules_version="r1",
    )
    return update.model_dump_json().encode()


async def test_crm_sync_killed_mid_burst_loses_nothing_and_never_writes_an_older_state(
    kafka_bootstrap: str, standin: HubSpotStandIn, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    prefix = f"k{run}."
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(f"{prefix}{t}", 3, 1)
                for t in ("lead_score_updates", "lead_stage_transitions")
            ]
        )
    finally:
        await admin.close()
    env = crm_env(standin, prefix, f"ls-{run}", f"ls:test:{run}:") | {
        "LEADSTREAM_CRM_BATCH_MAX": "10"
    }
    from stream_app.config import Settings
    from stream_app.crm.hubspot import HubSpot

    await asyncio.to_thread(
        HubSpot(Settings(hubspot_token=standin.token, hubspot_base_url=standin.url)).setup
    )
    leads, versions = [f"{run}-{n:02d}" for n in range(30)], 20
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def burst() -> None:  # a version of every lead every 0.6 s, while crm-sync writes
        for v in range(1, versions + 1):
            for lead in leads:
                await producer.send(
                    f"{prefix}lead_score_updates", score_update(lead, v), key=lead.encode()
                )
            await producer.flush()
            await asyncio.sleep(0.6)

    standin.faults.add("slow", 0.2, times=2)
    standin.faults.add("429", 1.0)
    standin.faults.add("500")
    standin.faults.add("timeout", 2.0)
    standin.faults.add("slow", 0.2, times=40)
    crm = leadstream(
        "crm-sync",
        log=tmp_path / "crm.log",
        env=env | {"LEADSTREAM_CRM_TIMEOUT_SECONDS": "1"},
        args=["--crm", "hubspot"],
    )
    try:
        await crm.start().wait_ready_async(60)
        sending = asyncio.create_task(burst())
        await until(lambda: len(standin.writes) >= 12, 90, "12 writes", crm)
        crm.stop(signal.SIGKILL)
        assert not sending.done(), "the kill came after the burst"
        crm.start()
        await sending
    finally:
        await producer.stop()

    def final() -> dict[str, str]:
        return {
            lead: (standin.contact_by("leadstream_lead_id", lead) or {}).get(
                "leadstream_version", ""
            )
            for lead in leads
        }

    await until(
        lambda: set(final().values()) == {str(versions)}, 120, "every lead at its last version", crm
    )
    crm.stop()
    assert standin.regressions == [], standin.regressions  # never an older state over a newer
    kinds = [k for k, _ in standin.faults.served]
    assert {"429", "500", "timeout"} <= set(kinds)
    log = crm.log_text()
    assert "retrying in 1.0s" in log  # Retry-After: 1 obeyed
    assert "Traceback" not in log and standin.token not in log
    # coalesced: far fewer contact writes than the 600 updates
    assert len(standin.writes) < 600 / 2, len(standin.writes)


async def test_a_journey_reaches_the_salesforce_stand_in_with_status_mapped_by_the_setting(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """lead -> MQL -> SQL -> recycled through the worker and crm-sync --crm salesforce: the
    Lead's Leadstream stage follows, ``Status`` as LEADSTREAM_SALESFORCE_STATUS maps it."""
    from tools.crm_standin.salesforce import SalesforceStandIn

    standin = SalesforceStandIn()
    await standin.start()
    run = uuid.uuid4().hex[:8]
    worker = WorkerProcess(run, tmp_path)
    env = {
        "LEADSTREAM_TOPIC_PREFIX": worker.names.prefix,
        "LEADSTREAM_APP_ID": f"ls-{run}",
        "LEADSTREAM_REDIS_KEY_PREFIX": f"ls:test:{run}:",
        "LEADSTREAM_SALESFORCE_BASE_URL": standin.url,
        "LEADSTREAM_SALESFORCE_DOMAIN": "standin",
        "LEADSTREAM_SALESFORCE_CLIENT_ID": standin.client_id,
        "LEADSTREAM_SALESFORCE_CLIENT_SECRET": standin.client_secret,
        "LEADSTREAM_SALESFORCE_STATUS": (
            "mql:Open - Not Contacted,sql:Working - Contacted,recycled:Closed - Not Converted"
        ),
        "LEADSTREAM_SALESFORCE_OUTCOMES": "Opportunity.StageName=Closed Won:won",
        "LEADSTREAM_CRM_BATCH_SECONDS": "0.3",
        "LEADSTREAM_TOPIC_PARTITIONS": "3",
    }
    crm = leadstream("crm-sync", log=tmp_path / "crm.log", env=env, args=["--crm", "salesforce"])
    worker.start()
    try:
        await crm.start().wait_ready_async(60)
        a = f"{run}-a"
        steps = journey(a, recycle=True)

        def lead() -> dict[str, Any]:
            return standin.lead_by("Leadstream_Lead_Id__c", a) or {}

        await feed(worker, kafka_bootstrap, steps[:2])
        await until(lambda: lead().get("Leadstream_Stage__c") == "mql", 90, "MQL", worker, crm)
        assert lead()["Status"] == "Open - Not Contacted"
        assert lead()["LastName"] == "[not provided]"  # Salesforce requires it to create
        await feed(worker, kafka_bootstrap, steps[2:-1])
        await until(lambda: lead().get("Leadstream_Stage__c") == "sql", 90, "SQL", worker, crm)
        assert lead()["Status"] == "Working - Contacted"
        await feed(worker, kafka_bootstrap, steps[-1:])
        await until(
            lambda: lead().get("Leadstream_Stage__c") == "recycled", 60, "recycled", worker, crm
        )
        assert lead()["Status"] == "Closed - Not Converted"
        assert lead()["Leadstream_Reason__c"].startswith("sales_feedback")
        assert isinstance(lead()["Leadstream_Score__c"], float)
        stages = [
            w.fields["Leadstream_Stage__c"]
            for w in standin.writes
            if w.fields.get("Leadstream_Lead_Id__c") == a
        ]
        assert [s for n, s in enumerate(stages) if n == 0 or stages[n - 1] != s] == [
            "mql",
            "sql",
            "recycled",
        ]
        assert max(standin.batch_sizes) <= 200
        assert standin.regressions == [] and not standin.refusals, standin.refusals
    finally:
        crm.stop()
        worker.stop()
        await standin.stop()
    text = crm.log_text()
    assert "Traceback" not in text and standin.client_secret not in text, text[-3000:]
