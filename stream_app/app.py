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
from typing import Any

import faust
from faust.streams import current_event
from faust.types import StreamT
from redis.exceptions import RedisError

from schemas.transitions import StageTransition
from stream_app import faust_fixes
from stream_app.codec import dead_letter
from stream_app.config import Settings
from stream_app.metrics import Metrics
from stream_app.pipeline import (
    Effects,
    Envelope,
    Record,
    due_at_of,
    dump_envelope,
    dump_record,
    event_from_json,
    identify,
    ingest,
    load_envelope,
    load_record,
    score,
)
from stream_app.projector import Projector
from stream_app.rules_file import Rules, load_rules
from stream_app.stores.client import redis_client
from stream_app.stores.projection import RedisProjection
from stream_app.topics import TopicNames

log = logging.getLogger("leadstream.worker")


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
            if len(self._heap) > 2 * len(self._due) + 1024:
                self._compact()

    def _compact(self) -> None:
        """Drop superseded entries: a busy lead pushes one per event, popped only when due."""
        self._heap = [(due_at, key) for key, due_at in self._due.items()]
        heapq.heapify(self._heap)

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
        names.identity_events(settings.app_id),
        names.scoring_events(settings.app_id),
    ]
    outputs = [names.transitions, names.score_updates, names.dead_letters]
    return [*names.inputs, *internal, *outputs]


MIB = 1024 * 1024


def table_options(settings: Settings) -> dict[str, Any]:
    """Arguments for ``app.Table``: partitions, raw bytes, RocksDB memory, changelog segments.

    Faust's RocksDB defaults (64 MB x 3 memtables and a 2 GiB block cache per
    partition) let the worker's RSS grow with the number of leads; these bound
    it. Small changelog segments let the broker's compaction keep a replay from
    the changelog close to one record per key.
    """
    return {
        "partitions": settings.topic_partitions,
        "key_type": bytes,
        "value_type": bytes,
        "options": {  # a new dict per table: Faust's store pops keys from it
            "write_buffer_size": settings.rocksdb_write_buffer_mb * MIB,
            "max_write_buffer_number": 2,
            "block_cache_size": settings.rocksdb_block_cache_mb * MIB,
        },
        "extra_topic_configs": {"segment.bytes": settings.changelog_segment_mb * MIB},
    }


def app_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``faust.App`` for the worker (and the benchmark's Faust phases,
    so they pay exactly the worker's Faust price)."""
    return {
        "broker": [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")],
        "broker_credentials": _credentials(settings),
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": 1,
        "topic_allow_declare": True,
        "processing_guarantee": "at_least_once",
        "broker_session_timeout": settings.session_timeout_seconds,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_seconds / 3),
        "consumer_group_instance_id": settings.instance_id,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": False,
        "table_standby_replicas": 0,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }


def create_app(settings: Settings | None = None, rules: Rules | None = None) -> faust.App:
    settings = settings or Settings()
    rules = rules or load_rules(settings.rules_path)
    faust_fixes.apply()  # see stream_app/faust_fixes.py
    names = TopicNames(settings.topic_prefix)
    partitions = settings.topic_partitions

    app = faust.App(settings.app_id, **app_options(settings))

    def topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, partitions=partitions, internal=True
        )

    inputs = app.topic(
        *names.inputs, key_type=bytes, value_type=bytes, partitions=partitions, internal=True
    )
    identity_topic = topic(names.identity_events(settings.app_id))
    scoring_topic = topic(names.scoring_events(settings.app_id))
    transitions_topic = topic(names.transitions)
    updates_topic = topic(names.score_updates)
    dead_letter_topic = topic(names.dead_letters)

    links = app.Table("identity-links", **table_options(settings))
    records = app.Table("lead-records", **table_options(settings))
    due = DueIndex()
    cache = RecordCache(limit=settings.record_cache_size)
    metrics = Metrics()
    projection = RedisProjection(redis_client(settings), settings.redis_key_prefix)

    @app.agent(inputs, name="ingest")
    async def ingest_agent(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
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
                await dead_letter_topic.send(key=message.key, value=routed.payload())
            elif routed.stage == "identity":
                await identity_topic.send(key=routed.key.encode(), value=routed.payload())
            else:
                await scoring_topic.send(key=routed.key.encode(), value=routed.payload())

    @app.agent(identity_topic, name="identity")
    async def identity_agent(stream: StreamT[bytes]) -> None:
        async for anon_key, payload in stream.items():
            try:
                event = event_from_json(payload)
                linked = links.get(anon_key)
                link, key, out = identify(event, linked.decode() if linked else None)
            except Exception as exc:
                await quarantine("identity", anon_key, payload, exc)
                continue
            sent = await scoring_topic.send(key=key.encode(), value=dump_envelope(out))
            if link is not None:
                # The release must be in Kafka before the link is: with the link
                # stored, a redelivered event would no longer send a release.
                await sent
                links[anon_key] = link.encode()

    async def deliver(transitions: list[StageTransition]) -> None:
        """Send transitions and wait for the broker's ack (the outbox depends on it)."""
        futures = [
            await transitions_topic.send(key=t.lead_id.encode(), value=t.model_dump_json().encode())
            for t in transitions
        ]
        for future in futures:
            await future

    async def apply(key: bytes, effects: Effects) -> None:
        # Forwards first, acknowledged, then the record: a release must not leave a
        # tombstone behind without its absorb. Repeating a forward after a crash is
        # harmless (merges record merged ids; events are de-duplicated by id).
        forwarded = [
            await scoring_topic.send(key=target.encode(), value=dump_envelope(envelope))
            for target, envelope in effects.forward
        ]
        for future in forwarded:
            await future
        if effects.resend:
            log.info("re-sending %d unannounced transition(s) for a lead", len(effects.resend))
        if effects.record is not None:
            records[key] = dump_record(effects.record)  # with the outbox, before sending
        pending = effects.resend + effects.transitions
        metrics.count_scored(effects)
        if pending:
            await deliver(pending)
            assert effects.record is not None
            records[key] = dump_record(Record(state=effects.record.state))  # delivered
        if effects.record is not None:
            due.set(key.decode(), effects.record.state.due_at)
            cache.put(key, Record(state=effects.record.state))  # as stored, outbox delivered
        if effects.update is not None:
            await updates_topic.send(
                key=effects.update.lead_id.encode(), value=effects.update.model_dump_json().encode()
            )

    async def quarantine(stage: str, key: bytes | None, payload: bytes, exc: Exception) -> None:
        """A message the worker failed on: dead-letter it with the error, keep going."""
        log.exception("%s failed on a message (key %r); sent to dead letters", stage, key)
        message = current_message()
        letter = dead_letter(
            payload, "processing_error", f"{stage}: {type(exc).__name__}: {exc}",
            topic=message.topic if message else None,
            partition=message.partition if message else None,
            offset=message.offset if message else None, key=key,
        )  # fmt: skip
        await dead_letter_topic.send(key=key, value=letter.model_dump_json().encode())

    @app.agent(scoring_topic, name="score")
    async def score_agent(stream: StreamT[bytes]) -> None:
        async for key, payload in stream.items():
            try:
                message = load_envelope(payload)
                record = cache.get(key)
                if record is None:
                    record = load_record(records.get(key))
                effects = score(key.decode(), message, record, rules)
            except Exception as exc:  # a bug must not stop scoring for everyone
                await quarantine("score", key, payload, exc)
                continue
            await apply(key, effects)

    @app.timer(interval=settings.sweep_interval_seconds, name="decay-sweep")
    async def decay_sweep() -> None:
        now = time.time()
        keys = due.pop_due(now, limit=10_000)
        for key in keys:
            tick = Envelope(kind="tick", now=now)
            await scoring_topic.send(key=key.encode(), value=dump_envelope(tick))
        if keys:
            log.info("decay sweep: %d lead(s) due, %d waiting", len(keys), len(due))

    # --- Redis projection: its own consumer, so scoring never waits for Redis -------

    @app.task
    async def project() -> None:
        await Projector(settings, projection).run()

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
            started = time.monotonic()
            seen = 0
            try:
                # One record at a time: a list of every record would hold the whole
                # table in memory (2 GB at 1M leads). The RocksDB iterators read a
                # snapshot; Faust keeps a revoked partition's DB open while one exists.
                for key, raw in records.items():
                    due.set(key.decode(), due_at_of(raw))
                    seen += 1
                    if seen % 2000 == 0:
                        await asyncio.sleep(0)
            except RuntimeError as exc:
                if "changed size during iteration" not in str(exc):
                    raise
                # the store's partition map changed under the iteration (a rebalance)
                log.info("due index rebuild interrupted by a rebalance (%s); again in 5 s", exc)
                await asyncio.sleep(5)
                continue
            log.info("due index rebuilt from %d local record(s) in %.1fs; %d due later",
                     seen, time.monotonic() - started, len(due))  # fmt: skip
            await asyncio.sleep(settings.sweep_rescan_seconds)

    @app.task
    async def announce() -> None:
        log.info(
            "Leadstream worker: rules %s from %s; brokers %s; store %s",
            rules.stamp, rules.source, settings.kafka_bootstrap, settings.store,
        )  # fmt: skip

    return app
