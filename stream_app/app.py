"""The Faust app: topics, tables, agents and the decay timer, wired to ``pipeline``.

``create_app(settings)`` builds everything; ``python -m stream_app worker``
runs it. The agents only move bytes between Kafka, the tables and the pure
stage functions in ``stream_app.pipeline``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import faust
import faust.streams as faust_streams
from faust.streams import current_event
from faust.types import StreamT
from redis.exceptions import RedisError

from schemas.events import InboundEvent
from schemas.transitions import ScoreUpdate, StageTransition
from stream_app.codec import dead_letter
from stream_app.config import Settings
from stream_app.kafka import partition_for
from stream_app.metrics import Metrics
from stream_app.pipeline import (
    Envelope,
    Record,
    dump_envelope,
    dump_record,
    event_from_json,
    identify,
    ingest,
    load_envelope,
    load_record,
    score,
)
from stream_app.scoring.rules import Rules, load_rules
from stream_app.stores.client import redis_client
from stream_app.stores.projection import RedisProjection
from stream_app.topics import TopicNames

log = logging.getLogger("leadstream.worker")


def set_current_event(event: Any) -> None:
    """Make ``event`` Faust's current event: its tables pick the partition from it.

    Needed when an agent takes messages in batches and writes a table after
    the loop that Faust sets the current event in.
    """
    faust_streams._current_event.set(weakref.ref(event))


def current_message() -> Any:
    event = current_event()
    return event.message if event is not None else None


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if protocol in ("SSL", "SASL_SSL"):
        import ssl  # noqa: PLC0415

        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        ssl_context = ssl.create_default_context(cafile=cafile)
        if protocol == "SSL":
            return faust.SSLCredentials(ssl_context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
        ssl_context=ssl_context,
    )


class RecordCache:
    """Decoded records of this worker's own leads (it is their only writer).

    Saves a RocksDB read and a JSON parse per message for active leads.
    Cleared on every rebalance; bounded (oldest inserted go first).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._records: dict[bytes, Record] = {}

    def get(self, key: bytes) -> Record | None:
        return self._records.get(key)

    def put(self, key: bytes, record: Record) -> None:
        if self.limit <= 0:
            return
        self._records.pop(key, None)
        self._records[key] = record
        if len(self._records) > self.limit:
            del self._records[next(iter(self._records))]

    def clear(self) -> None:
        self._records.clear()


class DueIndex:
    """In-memory min-heap of (due time, key) for the decay timer of this worker.

    Filled as the scoring agent writes records, and from the local table after
    recovery. Stale entries are harmless: a tick for a lead with nothing due
    changes nothing.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}

    def set(self, key: str, due_at: float | None) -> None:
        if due_at is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) != due_at:
            self._due[key] = due_at
            heapq.heappush(self._heap, (due_at, key))

    def pop_due(self, now: float, limit: int) -> list[str]:
        out: list[str] = []
        while self._heap and self._heap[0][0] <= now and len(out) < limit:
            due_at, key = heapq.heappop(self._heap)
            if self._due.get(key) == due_at:
                del self._due[key]
                out.append(key)
        return out

    def __len__(self) -> int:
        return len(self._due)


def worker_topics(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes, except Faust's changelogs."""
    names = TopicNames(settings.topic_prefix)
    internal = [
        names.name(f"{settings.app_id}-identity-events"),
        names.name(f"{settings.app_id}-scoring-events"),
    ]
    outputs = [names.transitions, names.score_updates, names.dead_letters]
    return [*names.inputs, *internal, *outputs]


def create_app(settings: Settings | None = None, rules: Rules | None = None) -> faust.App:
    settings = settings or Settings()
    rules = rules or load_rules(settings.rules_path)
    names = TopicNames(settings.topic_prefix)
    partitions = settings.topic_partitions

    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        consumer_group_instance_id=settings.instance_id,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        table_standby_replicas=0,
        key_serializer="raw",
        value_serializer="raw",
    )

    def topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, partitions=partitions, internal=True
        )

    identity_topic = topic(names.name(f"{settings.app_id}-identity-events"))
    scoring_topic = topic(names.name(f"{settings.app_id}-scoring-events"))
    transitions_topic = topic(names.transitions)
    updates_topic = topic(names.score_updates)
    dead_letter_topic = topic(names.dead_letters)

    links = app.Table("identity-links", partitions=partitions, key_type=bytes, value_type=bytes)
    records = app.Table("lead-records", partitions=partitions, key_type=bytes, value_type=bytes)
    due = DueIndex()
    cache = RecordCache(limit=settings.record_cache_size)
    metrics = Metrics()
    projection = RedisProjection(redis_client(settings), settings.redis_key_prefix)

    identity_name = identity_topic.get_topic_name()
    scoring_name = scoring_topic.get_topic_name()
    # One agent reads the inputs and both internal topics: an event whose input
    # partition is the one its key hashes to is handled here at once, saving a
    # Kafka hop; only the others are re-keyed through the internal topics.
    source = app.topic(
        *names.inputs, identity_name, scoring_name, key_type=bytes, value_type=bytes,
        partitions=partitions, internal=True,
    )  # fmt: skip
    copartitioned: dict[tuple[str, str], bool] = {}

    def handled_here(topic: str, partition: int, stage_topic: str, key: str) -> bool:
        """Whether ``key``'s messages on ``stage_topic`` would land on this very partition.

        True when the producer keyed the event the way this worker would (Kafka's
        default murmur2 partitioner) on a topic with as many partitions: the
        table partition is then the same as through ``stage_topic``.
        """
        same = copartitioned.get((topic, stage_topic))
        if same is None:
            counts = (app.consumer.topic_partitions(topic),
                      app.consumer.topic_partitions(stage_topic))  # fmt: skip
            same = copartitioned[(topic, stage_topic)] = counts[0] is not None and (
                counts[0] == counts[1]
            )
        return same and partition == partition_for(key.encode(), partitions)

    class Batch:
        """One take of messages: their state changes, gathered to be written once per key.

        Keys map to (the last event that touched them, the new value); the table
        writes at commit use that event's partition, as Faust's tables require.
        """

        def __init__(self) -> None:
            self.sent: list[Awaitable[Any]] = []  # acked before any table write
            self.records: dict[bytes, tuple[Any, Record]] = {}
            self.outbox: dict[bytes, list[StageTransition]] = {}
            self.links: dict[bytes, tuple[Any, bytes]] = {}
            self.updates: dict[str, ScoreUpdate] = {}

        def record(self, key: bytes) -> Record | None:
            held = self.records.get(key)
            if held is not None:
                return held[1]
            record = cache.get(key)
            return record if record is not None else load_record(records.get(key))

    @app.agent(source, name="process")
    async def process_agent(stream: StreamT[bytes]) -> None:
        # take_events is on faust.Stream, not yet on its StreamT interface
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.batch_max_messages, settings.batch_wait_seconds
        )
        async for events in batches:  # acknowledged by Faust once this body is done
            batch = Batch()
            try:
                for event in events:
                    set_current_event(event)
                    await take(batch, event)
                await commit(batch)
            except BaseException:
                cache.clear()  # it may hold what never reached the table
                raise

    async def take(batch: Batch, event: Any) -> None:
        message = event.message
        if message.topic == scoring_name:
            try:
                envelope = load_envelope(message.value)
            except Exception as exc:
                await quarantine(batch, "score", message.key, message.value, exc)
                return
            await score_step(batch, event, message.key, envelope, message.value)
        elif message.topic == identity_name:
            try:
                decoded = event_from_json(message.value)
            except Exception as exc:
                await quarantine(batch, "identity", message.key, message.value, exc)
                return
            await identity_step(batch, event, message.key, decoded, message.value)
        else:
            await ingest_step(batch, event)

    async def ingest_step(batch: Batch, event: Any) -> None:
        message = event.message
        routed = ingest(
            message.value, topic=message.topic, partition=message.partition,
            offset=message.offset, key=message.key,
        )  # fmt: skip
        metrics.count_ingested(routed, message.timestamp)
        if routed.stage == "dead_letter":
            log.warning(
                "dead letter from %s[%d]@%d: %s", message.topic, message.partition,
                message.offset, routed.kind,
            )  # fmt: skip
            batch.sent.append(await dead_letter_topic.send(key=message.key, value=routed.payload()))
            return
        assert routed.event is not None
        stage_topic = identity_name if routed.stage == "identity" else scoring_name
        if not handled_here(message.topic, message.partition, stage_topic, routed.key):
            target = identity_topic if routed.stage == "identity" else scoring_topic
            sent = await target.send(key=routed.key.encode(), value=routed.payload())
            batch.sent.append(sent)
        elif routed.stage == "identity":
            await identity_step(batch, event, routed.key.encode(), routed.event, message.value)
        else:
            envelope = Envelope(kind="event", event=routed.event)
            await score_step(batch, event, routed.key.encode(), envelope, message.value)

    async def identity_step(
        batch: Batch, event: Any, anon_key: bytes, decoded: InboundEvent, raw: bytes
    ) -> None:
        try:
            held = batch.links.get(anon_key)
            linked = held[1] if held is not None else links.get(anon_key)
            link, key, out = identify(decoded, linked.decode() if linked else None)
        except Exception as exc:
            await quarantine(batch, "identity", anon_key, raw, exc)
            return
        batch.sent.append(await scoring_topic.send(key=key.encode(), value=dump_envelope(out)))
        if link is not None:
            batch.links[anon_key] = (event, link.encode())

    async def score_step(
        batch: Batch, event: Any, key: bytes, envelope: Envelope, raw: bytes
    ) -> None:
        try:
            effects = score(key.decode(), envelope, batch.record(key), rules)
        except Exception as exc:  # a bug must not stop scoring for everyone
            await quarantine(batch, "score", key, raw, exc)
            return
        for target, forward in effects.forward:
            sent = await scoring_topic.send(key=target.encode(), value=dump_envelope(forward))
            batch.sent.append(sent)
        if effects.resend:
            log.info("re-sending %d unannounced transition(s) for a lead", len(effects.resend))
        metrics.count_scored(effects)
        if effects.record is not None:
            batch.records[key] = (event, Record(state=effects.record.state))
        if effects.resend or effects.transitions:
            assert effects.record is not None
            batch.outbox.setdefault(key, []).extend(effects.resend + effects.transitions)
        if effects.update is not None:
            batch.updates[effects.update.lead_id] = effects.update

    async def commit(batch: Batch) -> None:
        """Write what the batch changed, in the order that keeps a crash harmless.

        1. Every message sent while taking the batch (releases, absorbs, re-keyed
           events, dead letters) is acknowledged first: a stored link or a
           tombstone must never exist without the release or absorb behind it.
        2. Links, and records *with their outbox* of new transitions.
        3. Transitions (acknowledged) and the newest score update per lead.
        4. Records again with the outbox emptied.
        A crash anywhere leaves the batch unacknowledged: it is delivered again,
        its events are found to be duplicates, and the outboxes are re-sent.
        """
        for future in batch.sent:
            await future
        for anon_key, (event, link) in batch.links.items():
            set_current_event(event)
            links[anon_key] = link
        for key, (event, record) in batch.records.items():
            set_current_event(event)
            outbox = batch.outbox.get(key)
            records[key] = dump_record(Record(state=record.state, outbox=outbox or []))
        delivered = [
            await transitions_topic.send(key=t.lead_id.encode(), value=t.model_dump_json().encode())
            for pending in batch.outbox.values()
            for t in pending
        ]
        for update in batch.updates.values():
            await updates_topic.send(
                key=update.lead_id.encode(), value=update.model_dump_json().encode()
            )
        for future in delivered:
            await future
        for key in batch.outbox:
            event, record = batch.records[key]
            set_current_event(event)
            records[key] = dump_record(record)  # delivered
        for key, (_, record) in batch.records.items():
            due.set(key.decode(), record.state.due_at)
            cache.put(key, record)

    async def quarantine(
        batch: Batch, stage: str, key: bytes | None, payload: bytes, exc: Exception
    ) -> None:
        """A message the worker failed on: dead-letter it with the error, keep going."""
        log.exception("%s failed on a message (key %r); sent to dead letters", stage, key)
        message = current_message()
        letter = dead_letter(
            payload, "processing_error", f"{stage}: {type(exc).__name__}: {exc}",
            topic=message.topic if message else None,
            partition=message.partition if message else None,
            offset=message.offset if message else None, key=key,
        )  # fmt: skip
        sent = await dead_letter_topic.send(key=key, value=letter.model_dump_json().encode())
        batch.sent.append(sent)

    @app.timer(interval=settings.sweep_interval_seconds, name="decay-sweep")
    async def decay_sweep() -> None:
        now = time.time()
        keys = due.pop_due(now, limit=10_000)
        for key in keys:
            tick = Envelope(kind="tick", now=now)
            await scoring_topic.send(key=key.encode(), value=dump_envelope(tick))
        if keys:
            log.info("decay sweep: %d lead(s) due, %d waiting", len(keys), len(due))

    # --- Redis projection: separate agents, so scoring never waits for Redis -------

    async def with_redis(what: str, action: Callable[[], Awaitable[object]]) -> None:
        """Retry until Redis takes it: the projection catches up when Redis returns."""
        delay = 0.5
        while True:
            try:
                await action()
                if delay > 0.5:
                    log.warning("Redis is back; projection catching up")
                return
            except (RedisError, OSError) as exc:
                log.warning("Redis unavailable (%s) writing %s; retrying in %.1fs",
                            type(exc).__name__, what, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    @app.agent(updates_topic, name="project-scores")
    async def project_scores(stream: StreamT[bytes]) -> None:
        # Batches, one Redis pipeline each; only the newest version per lead matters.
        async for batch in stream.take(2000, within=0.1):
            newest: dict[str, ScoreUpdate] = {}
            for payload in batch:
                update = ScoreUpdate.model_validate_json(payload)
                held = newest.get(update.lead_id)
                if held is None or update.version > held.version:
                    newest[update.lead_id] = update
            updates = list(newest.values())
            await with_redis("score updates", partial(projection.apply_updates, updates))

    @app.agent(transitions_topic, name="project-transitions")
    async def project_transitions(stream: StreamT[bytes]) -> None:
        async for batch in stream.take(500, within=0.1):
            transitions = [StageTransition.model_validate_json(p) for p in batch]
            await with_redis("transitions", partial(projection.add_transitions, transitions))

    def forget_cached_records(sender: Any, /, *args: Any, signal: Any, **kw: Any) -> None:
        cache.clear()  # partitions may have moved: the table is the truth again

    app.on_partitions_revoked.connect(forget_cached_records)
    app.on_partitions_assigned.connect(forget_cached_records)

    @app.timer(interval=5.0, name="flush-metrics")
    async def flush_metrics() -> None:
        counters, gauges = metrics.drain()
        try:
            await projection.add_metrics(counters)
            await projection.set_gauges(gauges)
        except (RedisError, OSError):
            metrics.restore(counters)  # keep them for the next flush

    @app.task
    async def rebuild_due_index() -> None:
        """Fill the due index from this worker's local table, again every few minutes.

        Covers a restart (the index is in memory) and partitions gained in a
        rebalance; yields to the event loop as it goes.
        """
        await asyncio.sleep(5)
        while True:
            seen = 0
            for key, raw in list(records.items()):
                record = load_record(raw)
                if record is not None:
                    due.set(key.decode(), record.state.due_at)
                seen += 1
                if seen % 500 == 0:
                    await asyncio.sleep(0)
            log.info("due index rebuilt from %d local record(s); %d due later", seen, len(due))
            await asyncio.sleep(settings.sweep_rescan_seconds)

    @app.task
    async def announce() -> None:
        log.info(
            "Leadstream worker: rules %s from %s; brokers %s; store %s",
            rules.stamp, rules.source, settings.kafka_bootstrap, settings.store,
        )  # fmt: skip

    return app
