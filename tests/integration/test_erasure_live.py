"""Erasing a person on the real stack: after ``leadstream erase``, no store holds anything of them.

A real worker (and its projector child) scores a person: an anonymous visitor,
merged into a lead by an identify, and a second visitor linked to the lead
before it had any history; beside them, someone else. The ``erase`` command
runs as a subprocess, as an operator would run it, and waits for the erasure
event. Then: (a) no Redis key or member under the test's prefix names the
lead or its visitors; (b) the records changelog, read to its end, holds a
tombstone as the latest value of each of their keys; (c) with the worker
stopped, its RocksDB table (rocksdict, Faust's binding), opened read-only,
has none of their keys; (d) the latest value of the lead on
``lead_score_updates`` is a tombstone; (e) a later event for the lead id
starts from nothing: version 1, that one event's points; (f) over the
lead's three lives every record of it on ``lead_score_updates``, tombstones
included, carries CloudEvents headers, and no ``ce_id`` names two different
records.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from rocksdict import AccessType, Options, Rdict

from schemas.dead_letter import DeadLetter
from schemas.erasures import ErasureEvent
from schemas.events import parse_event
from schemas.transitions import ScoreUpdate
from stream_app.codec import decode_record
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from tests.factories import REPO, VP_PROFILE, at
from tests.integration.live import Lockstep, WorkerProcess, collect
from tests.integration.test_projection import mentions

pytestmark = pytest.mark.integration


def event(kind: str, hours: float, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": f"e-{uuid.uuid4().hex[:10]}",
        "occurred_at": at(hours=hours).isoformat(),
        **fields,
    }


async def latest_values(bootstrap: str, topic: str) -> dict[bytes, bytes | None]:
    """Each key's latest value on ``topic``, read from the start to its end as of now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    assert partitions, f"{topic} has no partitions: {described}"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(partitions)
        latest: dict[bytes, bytes | None] = {}
        deadline = time.monotonic() + 30
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key is not None:
                        latest[record.key] = record.value
        return latest
    finally:
        await consumer.stop()


async def records_of(
    bootstrap: str, topic: str, key: bytes
) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """Every record of ``key`` on ``topic`` so far, in order: its value and its headers."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(partitions)
        out: list[tuple[bytes | None, dict[str, bytes]]] = []
        deadline = time.monotonic() + 30
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += [(r.value, dict(r.headers)) for r in records if r.key == key]
        return out
    finally:
        await consumer.stop()


async def until(check: Any, what: str, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {limit_s}s"
        await asyncio.sleep(0.3)


def erase_command(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream_app", "erase", *args],
        cwd=REPO,
        env={**os.environ, **worker.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configs as the broker describes them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
    finally:
        await admin.close()
    out: dict[str, dict[str, str]] = {}
    for response in responses:
        for _, _, _, name, entries in response.resources:
            out[name] = {entry[0]: entry[1] for entry in entries}
    return out


def holding(data_dir: Path, needles: list[bytes]) -> dict[str, list[bytes]]:
    """The files under ``data_dir`` that contain any of ``needles``, and which."""
    found: dict[str, list[bytes]] = {}
    for path in data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n for n in needles if n in data]
            if hits:
                found[str(path.relative_to(data_dir))] = hits
    return found


def table_keys(data_dir: Path) -> set[bytes]:
    """Every key of the records table's RocksDB partitions, opened read-only."""
    paths = sorted(data_dir.glob("**/lead-records-*.db"))
    assert paths, f"no records table under {data_dir}"
    keys: set[bytes] = set()
    for path in paths:
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            keys.update(db.keys())
        finally:
            db.close()
    return keys


async def test_an_erased_person_leaves_no_store_and_comes_back_empty(
    kafka_bootstrap: str, tmp_path: Path, rules: Rules, redis_client: aioredis.Redis
) -> None:
    run = uuid.uuid4().hex[:8]
    lead, visitor, linked, other = f"lead-{run}", f"cookie-{run}", f"device-{run}", f"k-{run}"
    person = {lead, visitor, linked}
    history = [
        event("page_view", 0, anonymous_id=visitor, path="/pricing"),
        event("page_view", 1, anonymous_id=visitor, path="/product"),
        event("identify", 2, lead_id=lead, anonymous_id=visitor, traits=VP_PROFILE),
        event("identify", 3, lead_id=lead, anonymous_id=linked),  # no history yet
        event("form_submission", 4, lead_id=lead, form_kind="demo_request"),
        event("profile_update", 4, lead_id=other, **{**VP_PROFILE, "email": "o@acme.com"}),
        event("page_view", 5, lead_id=other, path="/pricing"),
    ]
    replay = Replay(rules)
    for raw in history:
        replay.process(parse_event(json.dumps(raw)))
    assert replay.states[lead].merged_anonymous == [visitor]
    worker = WorkerProcess(run, tmp_path)
    prefix = worker.env["LEADSTREAM_REDIS_KEY_PREFIX"]
    worker.start()
    try:
        async with Lockstep(kafka_bootstrap, worker) as feed:
            for raw in history:
                await feed.feed(raw)

            async def projected() -> bool:
                # The transitions and the score updates are two topics: the projector may
                # write a lead's update before its transitions, so both are awaited.
                versions = await asyncio.gather(
                    redis_client.hget(f"{prefix}lead:{lead}", "version"),
                    redis_client.hget(f"{prefix}lead:{other}", "version"),
                )
                transitions = await redis_client.zcard(f"{prefix}lead:{lead}:transitions")
                return transitions > 0 and versions == [
                    str(replay.states[lead].version).encode(),
                    str(replay.states[other].version).encode(),
                ]

            await until(projected, "the projection of both leads and the lead's transitions")
            assert await redis_client.zcard(f"{prefix}lead:{lead}:transitions") > 0
            assert await mentions(redis_client, prefix, person)
            changelog = await latest_values(kafka_bootstrap, worker.records_changelog)
            assert {lead.encode(), f"anon:{visitor}".encode(), f"anon:{linked}".encode()} <= {
                k for k, v in changelog.items() if v is not None
            }

            # a message of the person the worker refuses (a Segment identify without its
            # messageId): a dead letter, whose raw bytes must not keep the address or phone
            refused = {
                "type": "identify",
                "userId": lead,
                "timestamp": at(hours=4).isoformat(),
                "traits": {"email": "jane.doe@acme.com", "phone": "+1 555 0100", "plan": "x"},
            }
            await feed.send_raw("identities", json.dumps(refused).encode(), key=lead.encode())

            done = erase_command(worker, lead, "--wait", "--timeout", "60", "--reason", "test")
            assert done.returncode == 0, done.stderr
            request_id, answer = done.stdout.strip().splitlines()
            erasure = ErasureEvent.model_validate_json(answer)
            assert (erasure.erasure_id, erasure.lead_id, erasure.found) == (
                request_id,
                lead,
                True,
            )
            assert erasure.anonymous_ids == [visitor] and erasure.reason == "test"

            # (a) Redis: nothing names the person; the other lead is still there
            async def projection_erased() -> bool:
                return not await mentions(redis_client, prefix, person)

            await until(projection_erased, "the projection's erasure")
            assert await redis_client.hget(f"{prefix}lead:{other}", "version") is not None

            # (b) the changelog's latest value of each of the person's keys is a tombstone
            keys = {lead.encode(), f"anon:{visitor}".encode(), f"anon:{linked}".encode()}

            async def changelog_erased() -> bool:
                latest = await latest_values(kafka_bootstrap, worker.records_changelog)
                return all(k in latest and latest[k] is None for k in keys)

            await until(changelog_erased, "tombstones on the records changelog")
            latest = await latest_values(kafka_bootstrap, worker.records_changelog)
            assert latest[other.encode()] is not None

            # (g) the dead letter kept the message, not the person's address or phone;
            # the topics that keep what erasure cannot reach are bounded in time
            (letter,) = [
                DeadLetter.model_validate_json(raw)
                for raw in await collect(kafka_bootstrap, [worker.names.dead_letters], 1)
            ]
            assert b"jane.doe" not in letter.raw and b"555" not in letter.raw, letter.raw
            assert b"[redacted]@acme.com" in letter.raw and b'"plan":"x"' in letter.raw
            assert letter.redacted == 2
            configs = await topic_configs(
                kafka_bootstrap, [worker.records_changelog, worker.names.dead_letters]
            )
            day, week = str(24 * 3600 * 1000), str(7 * 24 * 3600 * 1000)
            changelog = configs[worker.records_changelog]
            assert changelog["cleanup.policy"] == "compact"
            assert (changelog["segment.ms"], changelog["max.compaction.lag.ms"]) == (day, day)
            assert changelog["delete.retention.ms"] == week
            assert configs[worker.names.dead_letters]["retention.ms"] == week

            # (c') no file of the running worker's RocksDB (write-ahead log, SST files)
            # holds a value of the person's records (the event ids they saw); their keys
            # stay only in a MANIFEST, as an old file's boundary, until it is rewritten
            data_dir = Path(worker.env["LEADSTREAM_DATA_DIR"])
            theirs = [e["event_id"].encode() for e in history[:5]]
            assert not holding(data_dir, theirs), holding(data_dir, theirs)
            assert holding(data_dir, [e["event_id"].encode() for e in history[5:]])
            keys_at = holding(data_dir, [k.encode() for k in person])
            assert all(Path(name).name.startswith("MANIFEST-") for name in keys_at), keys_at

            # (d) the lead's latest score update is a tombstone
            updates = await latest_values(kafka_bootstrap, worker.names.score_updates)
            assert lead.encode() in updates and updates[lead.encode()] is None
            assert updates[other.encode()] is not None

            # (c) the RocksDB table, read with the worker stopped
            worker.stop()
            stored = table_keys(Path(worker.env["LEADSTREAM_DATA_DIR"]))
            assert other.encode() in stored  # the table is the right one, and not empty
            assert not stored & keys, sorted(stored & keys)

            # (e) a later event for the same lead id starts from nothing
            worker.start()
            again = event("page_view", 30, lead_id=lead, path="/pricing")
            await feed.feed(again, limit_s=120)
            fresh = Replay(rules).process(parse_event(json.dumps(again))).update
            assert fresh is not None and fresh.version == 1
            updates = await latest_values(kafka_bootstrap, worker.names.score_updates)
            reborn = ScoreUpdate.model_validate_json(updates[lead.encode()] or b"")
            assert reborn.event_id == again["event_id"]
            assert reborn.model_copy(update={"event_id": None}) == fresh  # the replay names none

            async def projected_again() -> bool:
                return await redis_client.hget(f"{prefix}lead:{lead}", "version") == b"1"

            await until(projected_again, "the new life's projection")
            latest = await latest_values(kafka_bootstrap, worker.records_changelog)
            record = decode_record(latest[lead.encode()])
            assert record is not None and record.state.merged_anonymous == []
            assert set(record.state.seen) == {again["event_id"]}
            assert latest[f"anon:{visitor}".encode()] is None  # the visitor did not come back

            # and once more within one life of the worker, whose caches knew the record
            done = erase_command(worker, lead, "--wait", "--timeout", "60")
            assert done.returncode == 0, done.stderr
            once_more = event("page_view", 31, lead_id=lead, path="/blog/b")
            await feed.feed(once_more)
        updates = await latest_values(kafka_bootstrap, worker.names.score_updates)
        last = ScoreUpdate.model_validate_json(updates[lead.encode()] or b"")
        assert (last.version, last.event_id) == (1, once_more["event_id"])
        # (f) three lives: every record of the lead is a CloudEvent, and an id repeats only
        # with its bytes (the second and third lives' version-1 updates were both "<lead>:1"
        # before issue 25; the first life's first update came with the merge, past version 1)
        sent = await records_of(kafka_bootstrap, worker.names.score_updates, lead.encode())
        kinds = [h["ce_type"] for _, h in sent]
        assert kinds.count(b"dev.leadstream.score_update_deleted.v1") == 2, kinds
        for value, h in sent:
            deleted = h["ce_type"].endswith(b"score_update_deleted.v1")
            assert (value is None) == deleted and h["ce_subject"] == lead.encode()
        firsts = [v for v, _ in sent if v is not None and json.loads(v)["version"] == 1]
        assert len(set(firsts)) == 2, firsts
        by_id: dict[bytes, set[bytes | None]] = {}
        for value, h in sent:
            by_id.setdefault(h["ce_id"], set()).add(value)
        assert all(len(values) == 1 for values in by_id.values()), by_id
    finally:
        worker.stop()
        keys_left = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
        if keys_left:
            await redis_client.delete(*keys_left)
    log = worker.log_text()
    assert "Traceback" not in log, log[-3000:]


def test_erase_without_a_topic_to_send_to_is_one_clear_line_and_exit_2(
    kafka_bootstrap: str,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream_app", "erase", "lead-42", "--wait"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        env={**os.environ, "LEADSTREAM_TOPIC_PREFIX": f"none-{os.getpid()}."},
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Nothing was sent" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


async def test_an_erase_by_address_finds_a_lead_known_only_by_a_profile_update(
    kafka_bootstrap: str, tmp_path: Path, rules: Rules, redis_client: aioredis.Redis
) -> None:
    """Issue 26, item 1: the address came in a native profile_update (no identify, no
    e-mail provider event); ``erase <address>`` finds the lead, and its next event starts
    from nothing."""
    run = uuid.uuid4().hex[:8]
    lead, address = f"lead-{run}", f"Jane.{run}@Acme.com"
    history = [
        event("profile_update", 0, lead_id=lead, **{**VP_PROFILE, "email": address}),
        event("page_view", 1, lead_id=lead, path="/pricing"),
    ]
    worker = WorkerProcess(run, tmp_path)
    prefix = worker.env["LEADSTREAM_REDIS_KEY_PREFIX"]
    worker.start()
    try:
        async with Lockstep(kafka_bootstrap, worker) as feed:
            for raw in history:
                await feed.feed(raw)

            async def projected() -> bool:
                return await redis_client.zcard(f"{prefix}lead:{lead}:transitions") > 0

            await until(projected, "the lead's MQL in the projection")
            done = erase_command(worker, address.lower(), "--wait", "--timeout", "60")
            assert done.returncode == 0, done.stderr
            assert address.lower() not in done.stdout.lower()  # only the pseudonym travels
            request_id, answer = done.stdout.strip().splitlines()
            erasure = ErasureEvent.model_validate_json(answer)
            assert (erasure.erasure_id, erasure.lead_id, erasure.found) == (
                request_id,
                lead,
                True,
            )
            assert erasure.anonymous_id is not None
            assert erasure.anonymous_id.startswith("email:")

            async def projection_erased() -> bool:
                return not await mentions(redis_client, prefix, {lead})

            await until(projection_erased, "the projection's erasure")
            keys = {lead.encode(), f"anon:{erasure.anonymous_id}".encode()}

            async def changelog_erased() -> bool:
                latest = await latest_values(kafka_bootstrap, worker.records_changelog)
                return all(k in latest and latest[k] is None for k in keys)

            await until(changelog_erased, "tombstones on the records changelog")
            again = event("page_view", 30, lead_id=lead, path="/contact")
            await feed.feed(again)
        updates = await latest_values(kafka_bootstrap, worker.names.score_updates)
        reborn = ScoreUpdate.model_validate_json(updates[lead.encode()] or b"")
        fresh = Replay(rules).process(parse_event(json.dumps(again))).update
        assert fresh is not None and (reborn.version, reborn.stage) == (1, "lead")
        assert reborn.model_copy(update={"event_id": None}) == fresh
    finally:
        worker.stop()
        keys_left = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
        if keys_left:
            await redis_client.delete(*keys_left)
    log = worker.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert address.lower() not in log.lower()  # logs never print an address


async def test_an_erase_by_address_reaches_visitors_that_told_it_and_joined_no_lead(
    kafka_bootstrap: str, tmp_path: Path, rules: Rules, redis_client: aioredis.Redis
) -> None:
    """Issue 26, item 1's last case, on the real worker: a visitor that typed an address
    into a form and never joined a lead, and another that told a second address and then
    joined a lead with an identify naming no address. ``erase <address>`` erases the first
    (its next event starts from nothing) and ``erase <second address>`` the second's lead;
    each erasure lists what it erased."""
    run = uuid.uuid4().hex[:8]
    visitor, address = f"cookie-{run}", f"Ann.{run}@Acme.com"
    joiner, lead, second = f"device-{run}", f"lead-{run}", f"bob.{run}@acme.com"
    history = [
        event("page_view", 0, anonymous_id=visitor, path="/pricing"),
        event(
            "form_submission",
            1,
            anonymous_id=visitor,
            form_kind="newsletter",
            fields={"email": address, "company": "Acme"},
        ),
        event("page_view", 2, anonymous_id=joiner, path="/pricing"),
        event("profile_update", 3, anonymous_id=joiner, email=second, company_size=400),
        event("identify", 4, lead_id=lead, anonymous_id=joiner),
        event("page_view", 5, lead_id=lead, path="/product/x"),
    ]
    replay = Replay(rules)
    for raw in history:
        replay.process(parse_event(json.dumps(raw)))
    pseudonyms = sorted(replay.told)
    assert sorted(replay.told.values()) == [[visitor], [joiner]]
    worker = WorkerProcess(run, tmp_path)
    prefix = worker.env["LEADSTREAM_REDIS_KEY_PREFIX"]
    worker.start()
    try:
        async with Lockstep(kafka_bootstrap, worker) as feed:
            for raw in history:
                await feed.feed(raw)

            async def pointers_written() -> bool:
                # a visitor's tell reaches the pseudonym through the repartition topic
                latest = await latest_values(kafka_bootstrap, worker.records_changelog)
                stored = [decode_record(latest.get(f"anon:{p}".encode())) for p in pseudonyms]
                return all(r is not None and r.told_by for r in stored)

            await until(pointers_written, "the pseudonyms' pointers on the records changelog")
            latest = await latest_values(kafka_bootstrap, worker.records_changelog)
            assert not any(address.lower().encode() in (v or b"").lower() for v in latest.values())

            done = erase_command(worker, address, "--wait", "--timeout", "60")
            assert done.returncode == 0, done.stderr
            request_id, answer = done.stdout.strip().splitlines()
            erasure = ErasureEvent.model_validate_json(answer)
            assert (erasure.erasure_id, erasure.lead_id, erasure.found) == (request_id, None, True)
            assert erasure.anonymous_ids == [visitor]
            assert erasure.anonymous_id is not None and erasure.anonymous_id.startswith("email:")

            done = erase_command(worker, second, "--wait", "--timeout", "60")
            assert done.returncode == 0, done.stderr
            erasure = ErasureEvent.model_validate_json(done.stdout.strip().splitlines()[1])
            assert (erasure.lead_id, erasure.lead_ids, erasure.found) == (lead, [lead], True)
            assert erasure.anonymous_ids == [joiner]

            keys = {
                f"anon:{visitor}".encode(),
                f"anon:{joiner}".encode(),
                lead.encode(),
                *(f"anon:{p}".encode() for p in pseudonyms),
            }

            async def changelog_erased() -> bool:
                latest = await latest_values(kafka_bootstrap, worker.records_changelog)
                return all(k in latest and latest[k] is None for k in keys)

            await until(changelog_erased, "tombstones on the records changelog")

            async def projection_erased() -> bool:
                return not await mentions(redis_client, prefix, {lead, joiner})

            await until(projection_erased, "the lead's projection erased")
            # the visitor's next event starts from nothing: its record holds that event only
            again = event("page_view", 30, anonymous_id=visitor, path="/blog/a")
            await feed.feed(again)
            latest = await latest_values(kafka_bootstrap, worker.records_changelog)
            record = decode_record(latest[f"anon:{visitor}".encode()])
            assert record is not None and record.state.version == 1
            assert set(record.state.seen) == {again["event_id"]}
            fresh = Replay(rules)
            fresh.process(parse_event(json.dumps(again)))
            assert record.state == fresh.states[f"anon:{visitor}"]
            # and the lead's next event starts a new life: version 1
            reborn_event = event("page_view", 31, lead_id=lead, path="/contact")
            await feed.feed(reborn_event)
        updates = await latest_values(kafka_bootstrap, worker.names.score_updates)
        reborn = ScoreUpdate.model_validate_json(updates[lead.encode()] or b"")
        assert (reborn.version, reborn.event_id) == (1, reborn_event["event_id"])
    finally:
        worker.stop()
        keys_left = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
        if keys_left:
            await redis_client.delete(*keys_left)
    log = worker.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert address.lower() not in log.lower() and second not in log.lower()
