"""The notifier: a consumer of ``lead_stage_transitions`` in its own group that posts.

    fetch ──► drop: other stages, ids already posted ──► queue (fetch order)
                                                            │ NOTIFY_MAX_PER_SECOND
                                                            ▼
         commit offsets ◄── journal the ids ◄── POST (retried until 2xx)

At least once, nothing skipped: a transition's offset is committed only after
the post that carries it got a 2xx and its id is in the journal (fsynced).
A failed post is retried with exponential backoff (capped, Slack's
``Retry-After`` obeyed), forever: a webhook that is down or misconfigured
delays the announcements, it never loses one. Whatever arrives while the
notifier waits for its next slot joins the queue, so a burst becomes a few
digest messages instead of a flood past the rate limit.

After a crash the uncommitted tail is read again and the journal drops what
was posted already; only a post whose 2xx arrived just before the kill can be
repeated (once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas.transitions import StageTransition
from stream_app import cloudevents
from stream_app.config import Settings
from stream_app.errors import LeadstreamError
from stream_app.kafka import kafka_options
from stream_app.lifecycle import until_signalled
from stream_app.notify.journal import Journal
from stream_app.notify.messages import Kind, Post, plan
from stream_app.topics import TopicNames

log = logging.getLogger("leadstream.notify")

BACKOFF_START_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 15.0


class NotifyError(LeadstreamError):
    """The notifier is not configured (no webhook URL)."""


def notify_group(app_id: str) -> str:
    """The notifier's consumer group: its own offsets, apart from the worker's."""
    return f"{app_id}-notify"


@dataclass
class Item:
    tp: TopicPartition
    offset: int
    transition: StageTransition | None  # None: filtered, a duplicate or undecodable


class Poster:
    """POSTs one body until the webhook answers 2xx (backoff; ``Retry-After`` obeyed)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, *, cap: float) -> None:
        self.session = session
        self.url = url
        self.cap = cap
        self.retries = 0

    async def deliver(self, post: Post) -> int:
        """Returns the attempts it took."""
        delay = BACKOFF_START_SECONDS
        attempt = 0
        while True:
            attempt += 1
            wait = delay
            status: int | None = None
            try:
                async with self.session.post(
                    self.url, data=post.body, headers=post.headers
                ) as response:
                    text = (await response.text())[:200]
                    status = response.status
                    if 200 <= status < 300:
                        return attempt
                    retry_after = response.headers.get("Retry-After")
                    if response.status == 429 and retry_after:
                        with contextlib.suppress(ValueError):
                            wait = min(max(float(retry_after), 0.0), self.cap * 4)
                    problem = f"HTTP {response.status} {text!r}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}".replace(self.url, "<the webhook URL>")
            self.retries += 1
            # a 4xx other than 408/429 will not heal by itself (a revoked webhook, a bad
            # payload): still retried, never skipped, but loud enough for someone to act
            hopeless = status is not None and 400 <= status < 500 and status not in (408, 429)
            level = logging.ERROR if hopeless else logging.WARNING
            log.log(
                level,
                "post of %d transition(s) failed (attempt %d: %s); retrying in %.1fs",
                len(post.transition_ids),
                attempt,
                problem,
                wait,
            )
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.cap)


class _Revoked(ConsumerRebalanceListener):
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.notifier.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("notifier assigned %d partition(s)", len(list(assigned)))


class Notifier:
    def __init__(self, settings: Settings, *, kind: Kind | None = None) -> None:
        if settings.notify_url is None:
            raise NotifyError(
                "set LEADSTREAM_NOTIFY_URL to the webhook URL (a Slack incoming webhook, a "
                "Teams workflow webhook, or any HTTP endpoint); see `notify --help`"
            )
        self.settings = settings
        self.kind: Kind = kind or settings.notify_kind
        self.url = settings.notify_url.get_secret_value()
        self.topic = TopicNames.of(settings).transitions
        self.group = notify_group(settings.app_id)
        self.stages = frozenset(settings.notify_stages)
        self.interval = 1.0 / settings.notify_max_per_second
        self.journal = Journal(settings.notify_dir / f"{self.group}.sent")
        self.source = cloudevents.source_of(settings.app_id)
        self.queue: deque[Item] = deque()
        self.counts = {"posted": 0, "messages": 0, "duplicates": 0, "filtered": 0}

    def forget(self, revoked: set[TopicPartition]) -> None:
        """A rebalance took partitions: their new owner reads them from the committed offset."""
        self.queue = deque(i for i in self.queue if i.tp not in revoked)

    def take(self, records: Iterable[Any]) -> None:
        """Queue fetched records; drop what is filtered out or was posted already."""
        queued = {i.transition.transition_id for i in self.queue if i.transition is not None}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            try:
                transition = StageTransition.model_validate_json(record.value or b"")
            except ValidationError as exc:
                log.error(
                    "skipping an undecodable record %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc.errors()[0]["msg"],
                )
                self.queue.append(Item(tp, record.offset, None))
                continue
            tid = transition.transition_id
            kept: StageTransition | None = None
            if transition.to_stage not in self.stages:
                self.counts["filtered"] += 1
            elif tid in self.journal or tid in queued:
                self.counts["duplicates"] += 1
            else:
                queued.add(tid)
                kept = transition
            self.queue.append(Item(tp, record.offset, kept))

    def next_post(self) -> Post | None:
        pending = [i.transition for i in self.queue if i.transition is not None]
        if not pending:
            return None
        return plan(
            self.kind,
            pending,
            template=self.settings.notify_link_template,
            digest_max=self.settings.notify_digest_max,
            source=self.source,
            now=datetime.now(UTC),
        )

    def done(self, post: Post | None) -> dict[TopicPartition, int]:
        """Drop the queue's head up to the last item ``post`` carried (all of it if None);
        returns the offsets to commit."""
        carried = set(post.transition_ids) if post is not None else set()
        left = len(carried)
        commit: dict[TopicPartition, int] = {}
        while self.queue:
            head = self.queue[0]
            if head.transition is not None:
                if left == 0:
                    break
                if head.transition.transition_id in carried:
                    left -= 1
            commit[head.tp] = head.offset + 1
            self.queue.popleft()
        return commit

    def _consumer(self) -> AIOKafkaConsumer:
        session_ms = int(self.settings.session_timeout_seconds * 1000)
        return AIOKafkaConsumer(
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset=self.settings.notify_start,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=min(3000, session_ms // 3),
            **kafka_options(self.settings),
        )

    async def run(self) -> None:
        consumer = self._consumer()
        consumer.subscribe([self.topic], listener=_Revoked(self))
        await consumer.start()
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS)
        target = {"slack": "Slack", "teams": "Teams", "webhook": "a generic webhook"}[self.kind]
        log.info(
            "notifier: %s to %s, stages %s, at most %.3g post(s)/s; group %s, "
            "%d id(s) already posted",
            self.topic,
            target,
            ",".join(sorted(self.stages)),
            1 / self.interval,
            self.group,
            len(self.journal),
        )
        next_slot = 0.0
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                poster = Poster(session, self.url, cap=BACKOFF_CAP_SECONDS)
                while True:
                    wait = max(0.0, next_slot - time.monotonic()) if self.queue else 1.0
                    fetched = await consumer.getmany(timeout_ms=int(wait * 1000) or 0)
                    self.take(r for batch in fetched.values() for r in batch)
                    if not self.queue or time.monotonic() < next_slot:
                        continue
                    post = self.next_post()
                    if post is not None:
                        attempts = await poster.deliver(post)
                        self.journal.add(post.transition_ids)
                        next_slot = time.monotonic() + self.interval
                        self.counts["posted"] += len(post.transition_ids)
                        self.counts["messages"] += 1
                        log.info(
                            "posted %d transition(s) in one %s message%s",
                            len(post.transition_ids),
                            self.kind,
                            f" after {attempts} attempts" if attempts > 1 else "",
                        )
                    await self._commit(consumer, self.done(post))
        finally:
            await consumer.stop()
            self.journal.close()

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance: the new owner reads it again, the journal dedups
            log.warning(
                "could not commit (%s); those transitions will be read again and "
                "dropped as already posted",
                type(exc).__name__,
            )


def main() -> int:
    """``python -m stream_app notify``."""
    from stream_app.logs import configure  # noqa: PLC0415

    settings = Settings()
    configure(settings)
    notifier = Notifier(settings)

    async def serve() -> None:
        await until_signalled(notifier.run())
        log.info("notifier stopped: %s", notifier.counts)

    asyncio.run(serve())
    return 0
