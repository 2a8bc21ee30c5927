"""Every id the worker accepts is reachable through the API; the rest are dead letters.

A real worker (and its projector child) scores page views of leads whose ids
hold the characters a URL treats specially (``{``, ``}``, ``/``, ``%``, a
space, ``?``, ``#``) and non-ASCII ones; the query API, run as its own
process over the projection they wrote, answers each at ``/leads/<the id,
percent-encoded>`` with that lead, and its account at ``/accounts/<id>``.
Ids with a NUL or another control character are refused at the boundary:
a dead letter with reason ``invalid_id``, nothing scored, nothing served
(issue 25, item 7; the alphabet is ``schemas.base.Id``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from schemas.dead_letter import DeadLetter
from tests.factories import VP_PROFILE, at
from tests.integration.live import Lockstep, WorkerProcess, collect
from tools.launch import leadstream

pytestmark = pytest.mark.integration

TOKEN = "ids-live-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def get(http: aiohttp.ClientSession, base: str, path: str) -> tuple[int, str, dict]:
    # encoded=True: the path goes out exactly as quoted here (yarl would re-normalise it)
    async with http.get(URL(base + path, encoded=True), headers=AUTH) as response:
        body = await response.json() if response.content_type == "application/json" else {}
        return response.status, response.content_type, body


async def test_ids_with_url_characters_are_reachable_and_control_characters_are_refused(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    reachable = [
        f"acct{{{run}}}",
        f"a/b/{run}",
        f"100%{run}",
        f"two words {run}",
        f"Zoë 😀 {run}",
        f"q?x=1#frag{run}",
        f"%2F{run}",  # an id that looks percent-encoded is still itself
    ]
    account = f"org{{{run}}}/é"
    worker = WorkerProcess(run, tmp_path)
    worker.start()
    api = leadstream(
        "api",
        log=tmp_path / "api.log",
        env={
            "LEADSTREAM_REDIS_KEY_PREFIX": worker.env["LEADSTREAM_REDIS_KEY_PREFIX"],
            "LEADSTREAM_API_TOKEN": TOKEN,
        },
    )
    try:
        async with Lockstep(kafka_bootstrap, worker) as feed:
            for n, lead in enumerate(reachable):
                await feed.feed(
                    {
                        "type": "profile_update",
                        "event_id": f"p-{run}-{n}",
                        "occurred_at": at(hours=n).isoformat(),
                        "lead_id": lead,
                        **VP_PROFILE,
                        "account_id": account,
                    }
                )
            refused = [f"nul\x00{run}", f"bell\x07{run}", f"line\n{run}", f"zw\u200b{run}"]
            for n, lead in enumerate(refused):
                bad = {
                    "type": "page_view",
                    "event_id": f"r-{run}-{n}",
                    "occurred_at": at(hours=n).isoformat(),
                    "lead_id": lead,
                    "path": "/pricing",
                }
                await feed.send_raw("page_views", json.dumps(bad).encode(), key=lead.encode())
        letters = [
            DeadLetter.model_validate_json(raw)
            for raw in await collect(kafka_bootstrap, [worker.names.dead_letters], len(refused))
        ]
        assert sorted(letter.reason for letter in letters) == ["invalid_id"] * len(refused)
        assert all("lead_id: an id must be printable" in letter.error for letter in letters)

        await api.start().wait_ready_async(30)
        async with aiohttp.ClientSession() as http:
            base = api.url
            deadline = time.monotonic() + 30
            for lead in reachable:
                path = "/leads/" + quote(lead, safe="")
                while (answer := await get(http, base, path))[0] != 200:
                    assert time.monotonic() < deadline, (lead, answer)
                    await asyncio.sleep(0.3)
                status, content_type, body = answer
                assert body["lead_id"] == lead, (lead, body)
                assert body["account_id"] == account
            # a "/" may also travel unencoded: the route takes the rest of the path
            assert (await get(http, base, f"/leads/a/b/{run}"))[2]["lead_id"] == f"a/b/{run}"
            status, _, body = await get(http, base, "/accounts/" + quote(account, safe=""))
            assert status == 200 and body["account_id"] == account, body
            assert {lead["lead_id"] for lead in body["leads"]} == set(reachable)
            for lead in refused:  # nothing was stored under them
                status, content_type, body = await get(http, base, "/leads/" + quote(lead))
                assert (status, content_type) == (404, "application/json"), (lead, body)
    finally:
        api.stop()
        worker.stop()
    assert "Traceback" not in worker.log_text(), worker.log_text()[-4000:]
