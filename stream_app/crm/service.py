"""crm-sync: score updates and transitions into the CRM, in batches, in their own consumer group.

    fetch (both topics, up to LEADSTREAM_CRM_BATCH_SECONDS) ──► newest change per lead
        ──► admit: older than what was written? dropped   (Redis: what each lead got last)
        ──► claim in Redis ──► upsert, 100 (HubSpot) / 200 (Salesforce) leads a call
        ──► refused for good? dead letter (the CRM's words) ──► commit offsets

At least once, never older: offsets are committed only after the CRM took
every lead of the batch (or refused one for good and its dead letter was
acknowledged). A 429, a 5xx, a timeout or a revoked token is retried with
backoff (``Retry-After`` obeyed), forever and loudly: a CRM that is down delays
the sync, it never loses a change. After a kill -9 the uncommitted tail is read
again; what it repeats is written again (the same values), and what is older
than a write already made is dropped (``changes.admit``). The group uses the
range assignor, so a lead's partition on both topics belongs to one member,
and a member that loses partitions finishes its write first (``_Handoff``).

The process serves ``/health``, ``/ready`` (the CRM took our credentials,
Redis answers, the consumer runs) and ``/metrics`` on LEADSTREAM_CRM_PORT. Logs
carry counts and lead counts, never an address or a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from redis.exceptions import RedisError

from stream_app.codec import dead_letter, encode_output
from stream_app.config import Settings
from stream_app.crm.calls import Backend, Refused, Transient
from stream_app.crm.changes import Change, Record, Topic, Written, admit, claim, coalesce
from stream_app.httpserver import Runner, json_errors, serve
from stream_app.kafka import ensure_topics, kafka_options
from stream_app.lifecycle import until_signalled
from stream_app.topics import TopicNames

log = logging.getLogger("leadstream.crm")

BACKOFF_START_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0
#: A Retry-After longer than this is waited in pieces of this (the log says so each time).
RETRY_AFTER_CAP_SECONDS = 300.0
#: How long an erased lead's fence is kept in Redis (its old records are compacted by then).
ERASED_FENCE_SECONDS = 30 * 86400
MAX_RECORDS = 5000


def crm_group(app_id: str, crm: str) -> str:
    """crm-sync's consumer group: its own offsets, apart from the worker's and notify's."""
    return f"{app_id}-crm-{crm}"


@dataclass(frozen=True)
class Source:
    """Where a lead's newest record of the batch came from (for its dead letter)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class _Handoff(ConsumerRebalanceListener):
    """A member losing partitions finishes the write in flight first, so the next owner's
    re-read is admitted against what was really written."""

    def __init__(self, sync: CrmSync) -> None:
        self.sync = sync

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self.sync.busy:
            pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        parts = list(assigned)
        self.sync.assigned = len(parts)
        log.info("crm-sync assigned %d partition(s)", len(parts))


class CrmSync:
    def __init__(self, settings: Settings, backend: Backend, redis: aioredis.Redis) -> None:
        names = TopicNames.of(settings)
        self.settings = settings
        self.backend = backend
        self.redis = redis
        self.updates_topic = names.score_updates
        self.transitions_topic = names.transitions
        self.dead_letters_topic = names.dead_letters
        self.group = crm_group(settings.app_id, backend.name)
        self.key_prefix = f"{settings.redis_key_prefix}crm:{backend.name}:"
        self.busy = asyncio.Lock()
        self.assigned = 0
        self.checked = False
        self.registry = CollectorRegistry()
        labels = ["crm"]
        self.records = Counter(
            "leadstream_crm_records",
            "records read, by what became of them",
            ["crm", "fate"],
            registry=self.registry,
        )
        self.written = Counter(
            "leadstream_crm_leads_written", "leads the CRM took", labels, registry=self.registry
        )
        self.refused = Counter(
            "leadstream_crm_refused",
            "leads the CRM refused for good (dead letters)",
            labels,
            registry=self.registry,
        )
        self.retries = Counter(
            "leadstream_crm_retries",
            "failed writes retried, by cause",
            ["crm", "cause"],
            registry=self.registry,
        )
        self.calls = Gauge(
            "leadstream_crm_calls", "CRM calls made since start", labels, registry=self.registry
        )
        self.rate_waited = Gauge(
            "leadstream_crm_rate_limit_waited_seconds",
            "time spent waiting for the rate limit since start",
            labels,
            registry=self.registry,
        )
        self.last_write = Gauge(
            "leadstream_crm_last_write_timestamp_seconds",
            "when the CRM last took a batch",
            labels,
            registry=self.registry,
        )

    # --- the loop -------------------------------------------------------------------

    def _consumer(self) -> AIOKafkaConsumer:
        session_ms = int(self.settings.session_timeout_seconds * 1000)
        return AIOKafkaConsumer(
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset=self.settings.crm_start,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=min(3000, session_ms // 3),
            partition_assignment_strategy=(RangePartitionAssignor,),
            **kafka_options(self.settings),
        )

    async def run(self) -> None:
        await self._until_checked()
        await ensure_topics(self.settings, [self.dead_letters_topic])
        producer = AIOKafkaProducer(
            **kafka_options(self.settings), acks="all", enable_idempotence=True
        )
        consumer = self._consumer()
        consumer.subscribe([self.updates_topic, self.transitions_topic], listener=_Handoff(self))
        await producer.start()
        await consumer.start()
        log.info(
            "crm-sync: %s and %s into %s, group %s, up to %d lead(s) a call",
            self.updates_topic,
            self.transitions_topic,
            self.backend.name,
            self.group,
            self.backend.limit,
        )
        try:
            while True:
                records = await self._gather(consumer)
                if not records:
                    continue
                async with self.busy:
                    await self._handle(records, producer)
                # outside the lock: a rebalance waits for the write (_Handoff), not the commit
                await self._commit(consumer, records)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _until_checked(self) -> None:
        delay = BACKOFF_START_SECONDS
        while True:
            try:
                await asyncio.to_thread(self.backend.check)
                self.checked = True
                return
            except Transient as exc:
                log.warning(
                    "%s does not take crm-sync's calls yet (%s); retrying in %.1fs",
                    self.backend.name,
                    exc.what,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_CAP_SECONDS)

    async def _gather(self, consumer: AIOKafkaConsumer) -> list[Any]:
        """Records for up to LEADSTREAM_CRM_BATCH_SECONDS after the first one."""
        fetched = await consumer.getmany(timeout_ms=1000, max_records=MAX_RECORDS)
        records = [r for batch in fetched.values() for r in batch]
        if not records:
            return []
        deadline = time.monotonic() + self.settings.crm_batch_seconds
        while len(records) < MAX_RECORDS and (left := deadline - time.monotonic()) > 0:
            more = await consumer.getmany(
                timeout_ms=int(left * 1000), max_records=MAX_RECORDS - len(records)
            )
            records += [r for batch in more.values() for r in batch]
        return records

    async def _handle(self, records: Sequence[Any], producer: AIOKafkaProducer) -> None:
        plain = [self._record(r) for r in records]
        batch = coalesce(plain)
        sources: dict[str, Source] = {}
        for record in plain:
            if record.value is not None and record.key is not None:
                sources[record.key.decode(errors="replace")] = self._source(record)
        letters = [
            dead_letter(
                u.record.value or b"",
                "invalid",
                f"crm-sync cannot read this record: {u.error}",
                topic=self._topic_name(u.record.topic),
                partition=u.record.partition,
                offset=u.record.offset,
                key=u.record.key,
            )
            for u in batch.undecodable
        ]
        self.records.labels(self.backend.name, "undecodable").inc(len(batch.undecodable))
        changes = await self._admitted(list(batch.changes.values()))
        self.records.labels(self.backend.name, "read").inc(len(plain))
        refused: list[Refused] = []
        for start in range(0, len(changes), self.backend.limit):
            chunk = changes[start : start + self.backend.limit]
            refused += await self._write(chunk)
        for r in refused:
            source = sources.get(r.lead_id)
            raw = source.value if source is not None else r.lead_id.encode()
            letters.append(
                dead_letter(
                    raw,
                    "crm_refused",
                    f"{self.backend.name} refused the lead: {r.error}",
                    topic=source.topic if source else None,
                    partition=source.partition if source else None,
                    offset=source.offset if source else None,
                    key=r.lead_id.encode(),
                )
            )
        self.refused.labels(self.backend.name).inc(len(refused))
        if refused:
            log.error(
                "%s refused %d lead(s) for good; dead letters on %s",
                self.backend.name,
                len(refused),
                self.dead_letters_topic,
            )
        await self._send_letters(producer, letters)

    def _record(self, r: Any) -> Record:
        topic: Topic = "updates" if r.topic == self.updates_topic else "transitions"
        return Record(topic, r.key, r.value, r.partition, r.offset, r.timestamp)

    def _topic_name(self, topic: str) -> str:
        return self.updates_topic if topic == "updates" else self.transitions_topic

    def _source(self, r: Record) -> Source:
        return Source(self._topic_name(r.topic), r.partition, r.offset, r.key, r.value or b"")

    async def _admitted(self, changes: list[Change]) -> list[Change]:
        """The changes as ``admit`` leaves them, claimed in Redis before the write."""
        if not changes:
            return []
        keys = [self.key_prefix + c.lead_id for c in changes]
        stored = await self._with_redis(lambda: self.redis.mget(keys))
        out, claims = [], []
        stale = 0
        for change, key, raw in zip(changes, keys, stored, strict=True):
            written = Written.decode(raw)
            kept = admit(change, written)
            if kept != change:
                stale += 1
            if kept.empty:
                continue
            out.append(kept)
            claims.append((key, claim(kept, written), kept.erased))
        self.records.labels(self.backend.name, "stale").inc(stale)
        if stale:
            log.info("%d lead(s) had records older than what was written: not written", stale)

        async def store() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, value, erased in claims:
                    pipe.set(key, value.encode(), ex=ERASED_FENCE_SECONDS if erased else None)
                await pipe.execute()

        if claims:
            await self._with_redis(store)
        return out

    async def _write(self, changes: list[Change]) -> list[Refused]:
        delay = BACKOFF_START_SECONDS
        attempt = 0
        while True:
            attempt += 1
            try:
                refused = await asyncio.to_thread(self.backend.write, changes)
            except Transient as exc:
                wait = delay
                if exc.retry_after is not None:
                    wait = min(exc.retry_after, RETRY_AFTER_CAP_SECONDS)
                cause = exc.what.split(" ", 2)[1] if exc.what.startswith("HTTP ") else "no_answer"
                self.retries.labels(self.backend.name, cause).inc()
                log.warning(
                    "writing %d lead(s) to %s failed (attempt %d: %s); retrying in %.1fs",
                    len(changes),
                    self.backend.name,
                    attempt,
                    exc.what[:300],
                    wait,
                )
                await asyncio.sleep(wait)
                delay = min(delay * 2, BACKOFF_CAP_SECONDS)
                continue
            finally:
                self.calls.labels(self.backend.name).set(getattr(self.backend, "calls", 0))
                self.rate_waited.labels(self.backend.name).set(self.backend.rate.waited)
            self.written.labels(self.backend.name).inc(len(changes) - len(refused))
            self.last_write.labels(self.backend.name).set(time.time())
            log.info(
                "%s took %d lead(s)%s",
                self.backend.name,
                len(changes) - len(refused),
                f" after {attempt} attempts" if attempt > 1 else "",
            )
            return refused

    async def _send_letters(self, producer: AIOKafkaProducer, letters: list[Any]) -> None:
        if not letters:
            return
        delay = BACKOFF_START_SECONDS
        while True:
            try:
                futures = [
                    await producer.send(self.dead_letters_topic, encode_output(letter))
                    for letter in letters
                ]
                await asyncio.gather(*futures)
                return
            except KafkaError as exc:
                log.warning("dead letters not acknowledged (%s); retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP_SECONDS)

    async def _commit(self, consumer: AIOKafkaConsumer, records: Sequence[Any]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance: the new owner reads them again, admitted or not
            log.warning(
                "could not commit (%s); the batch will be read again, and what it "
                "repeats written again or dropped as older",
                type(exc).__name__,
            )

    async def _with_redis(self, action: Any) -> Any:
        delay = BACKOFF_START_SECONDS
        while True:
            try:
                return await action()
            except (RedisError, OSError) as exc:
                log.warning("Redis unavailable (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP_SECONDS)

    # --- HTTP -----------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "crm": self.backend.name})

    async def ready(self, request: web.Request) -> web.Response:
        redis_ok = False
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), 3))
        body = {
            "ready": self.checked and redis_ok and self.assigned > 0,
            "crm_checked": self.checked,
            "redis": redis_ok,
            "partitions": self.assigned,
        }
        return web.json_response(body, status=200 if body["ready"] else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[json_errors])
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.metrics)
        return app


def backend_of(settings: Settings, crm: str) -> Backend:
    if crm == "hubspot":
        from stream_app.crm.hubspot import HubSpot  # noqa: PLC0415

        return HubSpot(settings)
    from stream_app.crm.salesforce import Salesforce  # noqa: PLC0415

    return Salesforce(settings)


def setup(settings: Settings, crm: str) -> list[str]:
    """``crm-sync --setup``: what Leadstream needs in the CRM, created or listed."""
    backend = backend_of(settings, crm)
    try:
        return backend.setup()
    finally:
        backend.close()


def main(settings: Settings, crm: str) -> int:
    """``python -m stream_app crm-sync``."""
    from stream_app.logs import configure  # noqa: PLC0415
    from stream_app.serve.stores.client import redis_client  # noqa: PLC0415

    configure(settings)
    backend = backend_of(settings, crm)

    async def run() -> None:
        redis = redis_client(settings)
        sync = CrmSync(settings, backend, redis)
        runner = Runner(
            sync.app(),
            header_timeout=settings.http_header_timeout_seconds,
            body_timeout=settings.http_body_timeout_seconds,
            access_log=None,
        )
        site = await serve(runner, settings.crm_host, settings.crm_port)
        log.info("crm-sync health on http://%s:%d/ready", settings.crm_host, settings.crm_port)
        try:
            await until_signalled(sync.run())
        finally:
            await site.stop()
            await runner.cleanup()
            await redis.aclose()
            backend.close()
        log.info("crm-sync stopped")

    asyncio.run(run())
    return 0
