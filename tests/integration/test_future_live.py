"""Issue 25, on the real stack: one event dated 2099 no longer silences its lead.

Before the bound, a page view dated 2099-06-01 was scored: its lead's newest
event time jumped to 2099, and its real events after it were all ``late``. A
worker with the default ``LEADSTREAM_MAX_CLOCK_SKEW_SECONDS`` (the shared
``WorkerProcess`` allows ten years, to replay the seeded traffic) must
dead-letter it, and the lead must score exactly like a twin sent the same
real events.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync

from schemas.base import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from schemas.dead_letter import DeadLetter
from schemas.transitions import ScoreUpdate
from tests.factories import VP_PROFILE
from tests.integration.live import Lockstep, WorkerProcess, collect

pytestmark = pytest.mark.integration


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def real_events(lead: str, start: datetime) -> list[dict[str, Any]]:
    """A VP's profile, a pricing view and, through the Segment spec, a demo request."""
    return [
        {
            "type": "profile_update",
            "event_id": f"{lead}-1",
            "occurred_at": _iso(start),
            "lead_id": lead,
            **VP_PROFILE,
        },
        {
            "type": "page_view",
            "event_id": f"{lead}-2",
            "occurred_at": _iso(start + timedelta(minutes=1)),
            "lead_id": lead,
            "path": "/pricing",
        },
        {
            "type": "track",
            "event": "Demo Requested",
            "messageId": f"{lead}-3",
            "userId": lead,
            "timestamp": _iso(start + timedelta(minutes=2)),
            "properties": {},
        },
    ]


async def test_an_event_dated_2099_is_a_dead_letter_and_its_lead_reaches_its_twins_stage(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        uuid.uuid4().hex[:8],
        tmp_path,
        LEADSTREAM_MAX_CLOCK_SKEW_SECONDS=f"{DEFAULT_MAX_CLOCK_SKEW_SECONDS:g}",
    ).start()
    try:
        prefix = uuid.uuid4().hex[:6]
        lead, twin = f"{prefix}-lead", f"{prefix}-twin"
        now = datetime.now(UTC)
        future = now.replace(year=2099, month=6, day=1)
        poison = [
            {
                "type": "page_view",
                "event_id": f"{lead}-2099",
                "occurred_at": _iso(future),
                "lead_id": lead,
                "path": "/pricing",
            },
            {  # as a client posts it to `collect`: its device dates it after sending it
                "type": "page",
                "messageId": f"{lead}-2099-segment",
                "userId": lead,
                "originalTimestamp": _iso(future),
                "sentAt": _iso(now),
                "receivedAt": _iso(now),
                "properties": {"path": "/pricing"},
            },
        ]
        start = now - timedelta(minutes=10)
        async with Lockstep(kafka_bootstrap, worker) as feed:
            for message in poison:  # first: before the fix, the lead's newest time was 2099
                await feed.send_raw("page_views", json.dumps(message).encode(), lead.encode())
            for subject in (lead, twin):
                for message in real_events(subject, start):
                    value = json.dumps(message).encode()
                    await feed.send_raw("page_views", value, subject.encode())
                    wanted = message.get("event_id") or message["messageId"]
                    await asyncio.wait_for(feed._wait_for(wanted), 30)

        raw = await collect(kafka_bootstrap, [worker.names.score_updates], until=6)
        newest: dict[str, ScoreUpdate] = {}
        for value in raw:
            update = ScoreUpdate.model_validate_json(value)
            newest[update.lead_id] = update
        assert newest[lead].stage == newest[twin].stage == "sql"
        assert newest[lead].scores == newest[twin].scores
        assert newest[lead].version == newest[twin].version == 3

        raw = await collect(kafka_bootstrap, [worker.names.dead_letters], until=2)
        letters = [DeadLetter.model_validate_json(r) for r in raw]
        assert [(d.reason, d.key) for d in letters] == [("future_event", lead)] * 2
        assert all("after the message reached us" in d.error for d in letters)
        assert [json.loads(d.raw) for d in letters] == poison
        counted = 'leadstream_dead_letters_total{reason="future_event"}'
        assert await worker.metric(counted) == 2
        assert await worker.metric('leadstream_events_scored_total{status="late"}') is None
    finally:
        worker.stop()
        cleanup = redis_sync.Redis.from_url(
            worker.env.get("LEADSTREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
        )
        keys = list(cleanup.scan_iter(match=worker.env["LEADSTREAM_REDIS_KEY_PREFIX"] + "*"))
        if keys:
            cleanup.delete(*keys)
        cleanup.close()
    assert "Traceback" not in worker.log_text(), worker.log_text()[-4000:]
