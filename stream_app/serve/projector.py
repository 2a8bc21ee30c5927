"""The Redis projection's feed: score updates, transitions and SLA breaches into Redis.

A plain aiokafka consumer in its own group (``<app id>-projection``), run as a
process of its own (the worker starts one as its child, so writing Redis
never takes the scoring process's CPU), not a Faust agent. As Faust agents
in the scoring group, the projection got its records through the same fetches as the input
topics' backlog: in the benchmark it fell more than 100,000 updates behind
the scoring while using 3.5 % of the CPU, and caught up in seconds once the
scoring stopped. Its own consumer fetches its own partitions, in batches of
up to ``batch`` records with no per-message futures.

At least once: offsets are committed after Redis has taken the batch. Writes
are idempotent (a score update applies only if its version is newer, a
transition is stored once per sequence number), so a batch read again after
a crash or a rebalance changes nothing. While Redis is down the batch is
retried with backoff and nothing is committed; the scoring goes on.

An erased lead arrives as a tombstone (a null value) on ``lead_score_updates``,
keyed by the lead: the projection deletes every Redis key and index entry of
the lead (``RedisProjection.erase``). On that topic it is in order with the
lead's updates, so an older update cannot bring the lead back after it; in
one fetch, only updates after the lead's last tombstone count. Transitions
come on another topic, in no order with it: a transition of the lead
produced (Kafka timestamp) at or before its tombstone, read after it, is
dropped (``ErasureFence``, in memory: see docs/guarantees.md for its limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from redis.exceptions import RedisError

from schemas.transitions import ScoreUpdate, SlaBreach, StageTransition
from stream_app.config import Settings
from stream_app.kafka import kafka_options
from stream_app.lifecycle import until_signalled
from stream_app.serve.stores.projection import RedisProjection
from stream_app.topics import TopicNames

log = logging.getLogger("leadstream.projector")

BACKOFF_CAP_SECONDS = 15.0


def projection_group(app_id: str) -> str:
    """The projection's consumer group (the harness and operators watch its lag)."""
    return f"{app_id}-projection"


def projected_topics(names: TopicNames) -> list[str]:
    """The topics the projection reads: score updates, transitions, SLA breaches."""
    return [names.score_updates, names.transitions, names.sla_breaches]


def newest_per_lead(updates: Iterable[ScoreUpdate]) -> list[ScoreUpdate]:
    """Only the highest version per lead matters to the projection."""
    newest: dict[str, ScoreUpdate] = {}
    for update in updates:
        held = newest.get(update.lead_id)
        if held is None or update.version > held.version:
            newest[update.lead_id] = update
    return list(newest.values())


@dataclass
class Fetched:
    """One fetch, decoded: what the projection applies, in this order."""

    erased: dict[str, int] = field(default_factory=dict)  # lead -> its tombstone's timestamp
    updates: list[ScoreUpdate] = field(default_factory=list)  # each after its lead's erasure
    transitions: list[tuple[StageTransition, int]] = field(default_factory=list)  # + timestamp
    breaches: list[tuple[SlaBreach, int]] = field(default_factory=list)  # + timestamp


def decode_batch(
    records: Iterable[ConsumerRecord[bytes, bytes]], updates_topic: str, breaches_topic: str = ""
) -> Fetched:
    """Erasures, score updates, transitions and SLA breaches from one fetch (in each
    partition's order);
    an undecodable record is logged, skipped.

    Only the worker writes these topics, so a bad record is a bug or a foreign
    producer: it must not stop the projection for every other lead.
    """
    fetched = Fetched()
    for record in records:
        try:
            if record.topic == updates_topic and record.value is None and record.key:
                lead = record.key.decode()
                # what came before the tombstone is erased with it
                fetched.updates = [u for u in fetched.updates if u.lead_id != lead]
                fetched.erased[lead] = record.timestamp
            elif record.topic == updates_topic:
                fetched.updates.append(ScoreUpdate.model_validate_json(record.value or b""))
            elif record.topic == breaches_topic:
                breach = SlaBreach.model_validate_json(record.value or b"")
                fetched.breaches.append((breach, record.timestamp))
            else:
                transition = StageTransition.model_validate_json(record.value or b"")
                fetched.transitions.append((transition, record.timestamp))
        except ValidationError as exc:
            log.error(
                "projection skips an undecodable record %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                exc.errors()[0]["msg"],
            )
    return fetched


class ErasureFence:
    """Erased leads and their tombstones' timestamps (ms), the newest ``limit``: a transition
    of such a lead produced at or before the tombstone is not projected."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._erased: OrderedDict[str, int] = OrderedDict()

    def note(self, lead_id: str, timestamp: int) -> None:
        self._erased.pop(lead_id, None)
        self._erased[lead_id] = timestamp
        while len(self._erased) > self.limit:
            self._erased.popitem(last=False)

    def admits(self, lead_id: str, timestamp: int) -> bool:
        erased_at = self._erased.get(lead_id)
        return erased_at is None or timestamp > erased_at


class Projector:
    """Consume score updates, transitions and SLA breaches, write them to Redis, commit."""

    def __init__(self, settings: Settings, projection: RedisProjection, batch: int = 5000) -> None:
        names = TopicNames(settings.topic_prefix)
        self.settings = settings
        self.projection = projection
        self.batch = batch
        self.updates_topic = names.score_updates
        self.breaches_topic = names.sla_breaches
        self.topics = projected_topics(names)
        self.fence = ErasureFence()

    def _consumer(self) -> AIOKafkaConsumer:
        settings = self.settings
        options: dict[str, Any] = kafka_options(settings)
        if settings.instance_id:  # static membership: a restarted worker resumes at once
            options["group_instance_id"] = f"{settings.instance_id}-projection"
        session_ms = int(settings.session_timeout_seconds * 1000)
        return AIOKafkaConsumer(
            *self.topics,
            group_id=projection_group(settings.app_id),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=min(3000, session_ms // 3),
            **options,
        )

    async def run(self) -> None:
        consumer = self._consumer()
        await consumer.start()
        log.info(
            "projection consuming %s as group %s",
            ", ".join(self.topics),
            projection_group(self.settings.app_id),
        )
        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=500, max_records=self.batch)
                if not fetched:
                    continue
                records = [r for batch in fetched.values() for r in batch]
                decoded = decode_batch(records, self.updates_topic, self.breaches_topic)
                for lead, at in decoded.erased.items():
                    self.fence.note(lead, at)
                if decoded.erased:
                    erased = list(decoded.erased)
                    await self._with_redis("erasures", partial(self.projection.erase, erased))
                    log.info("projection erased %d lead(s)", len(erased))
                newest = newest_per_lead(decoded.updates)
                await self._with_redis(
                    "score updates", partial(self.projection.apply_updates, newest)
                )
                transitions = [
                    t for t, at in decoded.transitions if self.fence.admits(t.lead_id, at)
                ]
                await self._with_redis(
                    "transitions", partial(self.projection.add_transitions, transitions)
                )
                breaches = [b for b, at in decoded.breaches if self.fence.admits(b.lead_id, at)]
                await self._with_redis(
                    "SLA breaches", partial(self.projection.add_breaches, breaches)
                )
                # A stop (SIGTERM, or the worker's death) must not cut a commit in half:
                # aiokafka's commit task would then fail against the closed connection
                # with nobody to take its error (a traceback in the log at every such stop).
                commit = asyncio.ensure_future(self._commit(consumer))
                try:
                    await asyncio.shield(commit)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(commit, 10)
                    raise
        finally:
            await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await consumer.commit()
        except KafkaError as exc:
            # e.g. a rebalance while Redis was down: the batch is read again, harmlessly
            log.warning(
                "projection could not commit its offsets (%s); the batch will be "
                "read again and applied idempotently",
                type(exc).__name__,
            )

    async def _with_redis(self, what: str, action: Callable[[], Awaitable[object]]) -> None:
        """Retry until Redis takes it: the projection catches up when Redis returns."""
        delay = 0.5
        while True:
            try:
                await action()
                if delay > 0.5:
                    log.warning("Redis is back; projection catching up")
                return
            except (RedisError, OSError) as exc:
                log.warning(
                    "Redis unavailable (%s) writing %s; retrying in %.1fs",
                    type(exc).__name__,
                    what,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP_SECONDS)


def main() -> int:
    """``python -m stream_app projector``: the projection as a process of its own.

    The worker starts one as its child by default (``LEADSTREAM_PROJECTOR=child``),
    so that writing Redis never takes CPU from the scoring process; with
    ``LEADSTREAM_PROJECTOR=none`` run it yourself, as many as you like (one
    consumer group shares the partitions).
    """
    from stream_app.logs import configure  # noqa: PLC0415
    from stream_app.serve.stores.client import redis_client  # noqa: PLC0415

    settings = Settings()
    configure(settings)
    projection = RedisProjection(redis_client(settings), settings.redis_key_prefix)

    async def serve() -> None:
        await until_signalled(Projector(settings, projection).run())
        log.info("projection stopped")

    try:
        asyncio.run(serve())
    except KafkaError as exc:
        # e.g. fenced by the restarted worker's projector (same static member id) while
        # this one, orphaned by a kill -9, is still stopping: an error, not a crash
        log.error(
            "projection stopped: its Kafka consumer failed (%s: %s); the worker starts a new one",
            type(exc).__name__,
            exc,
        )
        return 1
    return 0


def repair_attribution() -> int:
    """``python -m stream_app projector --repair-attribution``: the old script's stale
    source and campaign memberships removed in place (see RedisProjection.repair_attribution).

    Not a replay of ``lead_score_updates``: the lead hashes already hold every
    lead's newest update, while the topic keeps only its retention (and a
    replay over existing keys is refused by the version check anyway).
    """
    from stream_app.logs import configure  # noqa: PLC0415
    from stream_app.serve.stores.client import redis_client  # noqa: PLC0415

    settings = Settings()
    configure(settings)

    async def repair() -> dict[str, int]:
        client = redis_client(settings)
        try:
            return await RedisProjection(client, settings.redis_key_prefix).repair_attribution()
        finally:
            await client.aclose()

    try:
        removed = asyncio.run(repair())
    except (RedisError, OSError) as exc:
        log.error("attribution repair failed: Redis at %s: %s", settings.redis_url, exc)
        return 1
    log.info(
        "attribution repaired under prefix %s: %d stale source and %d stale campaign "
        "memberships removed",
        settings.redis_key_prefix,
        removed["source"],
        removed["campaign"],
    )
    return 0


def die_with_parent() -> None:
    """In a child process, before exec: get SIGTERM when the parent dies, even by kill -9
    (Linux ``prctl(PR_SET_PDEATHSIG)``), so a killed worker leaves no projector behind."""
    import ctypes  # noqa: PLC0415

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
