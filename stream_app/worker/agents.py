"""The worker's Faust agent, timers and tasks, built from a small context.

One agent reads the input topics and the repartition topic together, in
batches (``Stream.take_events``). Faust assigns the same partition number of
every topic it reads, and of the records table's changelog, to the same
worker, so a batch's messages of partition *p* are scored by one
``PartitionBatch`` against the records of partition *p*.

Repartition messages wait until their partition's inputs are read up to
their Kafka timestamp (``stream_app/worker/ordering.py``), so a claim cannot
overtake the visitor's earlier events.

Per batch, in this order (the guarantee in docs/guarantees.md rests on it):

1. transitions, erasures, repartition messages, a tombstone per erased lead
   and the newest score update per lead on the score updates, and the dead
   letters are produced straight on the aiokafka producer under
   Faust's (no per-message Faust send path), and their acks are awaited
   together;
2. each changed record is written once, an erased one deleted: a RocksDB
   write batch and the changelog (``RecordWriter``);
3. the batch's messages are acked (a flusher task does 1-3 for batch N
   while the agent scores batch N+1 from memory); Faust commits acked
   offsets every ``broker_commit_interval`` and flushes the producer before
   it does.

A kill between 1 and 2 repeats the batch's outputs, with the same ids; it
never loses one.

Faust's table API finds a key's partition from the *current event* (a
context variable the stream sets per message); a batch is processed outside
that iteration, so the agent sets it to a message of the partition it works
on before reading or writing records.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import sys
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.types import TP, EventT, StreamT
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from stream_app import cloudevents
from stream_app.codec import decode_record, due_at_of, encode_internal, encode_output, encode_record
from stream_app.config import Settings
from stream_app.errors import RulesError
from stream_app.ingest.tracks import Tracks
from stream_app.messages import Record, RulesSwitch, Tick
from stream_app.rules_file import load_rules
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import ANONYMOUS_PREFIX
from stream_app.serve.projector import die_with_parent
from stream_app.topics import TopicNames
from stream_app.worker.health import Collector, Probes, WorkerMetrics, create_worker_http, serve
from stream_app.worker.ordering import TimeOrder, frontier
from stream_app.worker.pipeline import Outputs, PartitionBatch, routing_key
from stream_app.worker.records import DueIndex, RecordCache, RecordWriter
from stream_app.worker.watch import Snapshot, Stalls

log = logging.getLogger("leadstream.worker")


@dataclass
class Context:
    """What the agents share: settings, rules, topic names, the table and the caches."""

    app: faust.App
    settings: Settings
    rules: Rules
    names: TopicNames
    source: Any  # a faust Topic over the inputs and the repartition topic
    records: Any  # the faust Table of records (bytes -> bytes)
    cache: RecordCache
    due: DueIndex
    metrics: WorkerMetrics
    tracks: Tracks | None = None  # Segment-spec track names (None: the shipped defaults)

    @property
    def repartition_topic(self) -> str:
        return self.names.repartition(self.settings.app_id)


def _enter(event: EventT) -> None:
    """Make ``event`` Faust's current event: table reads and writes go to its partition."""
    _current_event.set(weakref.ref(event))


class Producer:
    """Sends on the aiokafka producer under Faust's app producer (flushed before commits)."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,  # None: a tombstone
        partition: int | None = None,
        timestamp: float | None = None,  # seconds; the producer's clock when None
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        producer = self._app.producer._ensure_producer()  # type: ignore[attr-defined]
        timestamp_ms = None if timestamp is None else round(timestamp * 1000)
        future: asyncio.Future[Any] = await producer.send(
            topic,
            value=value,
            key=key,
            partition=partition,
            timestamp_ms=timestamp_ms,
            headers=headers,
        )
        return future


@dataclass
class Flush:
    """A scored batch waiting for its acks, then its record writes, then its inputs' acks."""

    stream: Any
    done: list[tuple[EventT, Outputs]]
    acks: list[asyncio.Future[Any]]
    events: list[EventT]


class Pace:
    """Batches and messages per minute, for the log (what an operator reads first)."""

    def __init__(self) -> None:
        self.batches = self.messages = 0
        self.deliver_s = self.wait_s = self.score_s = 0.0
        self.since = time.monotonic()

    def waited(self, seconds: float) -> None:
        self.wait_s += seconds

    def scored(self, seconds: float) -> None:
        self.score_s += seconds

    def batch(self, messages: int, deliver_s: float) -> None:
        self.batches += 1
        self.messages += messages
        self.deliver_s += deliver_s

    def log_and_reset(self) -> None:
        if self.batches:
            seconds = time.monotonic() - self.since
            log.info(
                "scored %d message(s) in %d batch(es) in %.0fs (%.0f/s, %.1f per batch); "
                "of the time: %.0f%% waiting for a batch, %.0f%% scoring it, %.0f%% flushing "
                "(acks, writes, beside the scoring)",
                self.messages,
                self.batches,
                seconds,
                self.messages / seconds,
                self.messages / self.batches,
                100 * self.wait_s / seconds,
                100 * self.score_s / seconds,
                100 * self.deliver_s / seconds,
            )
        self.__init__()  # type: ignore[misc]


def describe(consumer: Any, tp: Any, snapshot: Snapshot) -> str:
    """The consumer's view of one partition, for the log of a stalled partition."""
    faust_view = {
        "committed": snapshot.committed,
        "end": snapshot.end,
        "handed": snapshot.handed,
        "read_offset": consumer._read_offset.get(tp),
        "active": tp in (consumer._active_partitions or ()),
        "paused": tp in consumer._paused_partitions,
        "buffered": tp in consumer._buffered_partitions,
        "gap": sorted(consumer._gap.get(tp, ()))[:5],
        "acked": sorted(consumer._acked.get(tp, ()))[:5],
    }
    try:
        inner = consumer._thread._consumer
        state = inner._subscription.subscription.assignment.state_value(tp)
        kafka_view = {
            "position": state._position,
            "paused": state.paused,
            "has_valid_position": state.has_valid_position,
        }
    except Exception as exc:  # a diagnostic must not fail the worker
        kafka_view = {"error": repr(exc)}
    return f"faust {faust_view}; aiokafka {kafka_view}"


def register(ctx: Context) -> None:
    """Declare the scoring agent, the decay sweep, the due-index rebuild and the projection."""
    app, settings = ctx.app, ctx.settings
    # The rules in force: a reload (SIGHUP) swaps them between two batches, so every
    # batch is scored with one version (its transitions carry that version's stamp).
    current = [ctx.rules]
    names, records, cache, due, metrics = ctx.names, ctx.records, ctx.cache, ctx.due, ctx.metrics
    repartition = ctx.repartition_topic
    partitions = settings.topic_partitions
    producer = Producer(app)
    writer = RecordWriter(records, producer.send)

    # Records computed but not written yet (their batch waits for acks): the next batch
    # reads them first (None: erased). Unlike the cache, never cleared on a rebalance: only a
    # write ends them.
    unwritten: dict[bytes, Record | None] = {}
    flushes: asyncio.Queue[Flush] = asyncio.Queue(maxsize=settings.batches_in_flight)
    pace = Pace()
    handed: dict[Any, int] = {}  # records that reached the agent, per partition (the watch)
    idle = {"agent": False, "flusher": True}
    ce_source = cloudevents.source_of(settings.app_id)

    def ce_headers(record: cloudevents.Output, value: bytes) -> list[tuple[str, bytes]]:
        return cloudevents.headers(record, source=ce_source, now=datetime.now(UTC), value=value)

    def load(key: str) -> Record | None:
        raw_key = key.encode()
        if raw_key in unwritten:
            return unwritten[raw_key]
        record = cache.get(raw_key)
        return record if record is not None else decode_record(records.get(raw_key))

    def score_partition(partition: int, events: list[EventT]) -> Outputs:
        driver = PartitionBatch(
            partition, partitions, current[0], load, ctx.tracks, settings.max_clock_skew_seconds
        )
        for event in events:
            message = event.message
            if message.topic == repartition:
                driver.internal(
                    message.value or b"",
                    topic=message.topic,
                    offset=message.offset,
                    key=message.key,
                    timestamp=message.timestamp,
                )
            else:
                driver.input(
                    message.value,
                    topic=message.topic,
                    offset=message.offset,
                    key=message.key,
                    timestamp=message.timestamp,
                )
        for exc in driver.errors:
            log.error(
                "scoring failed on a message of partition %d; sent to dead letters",
                partition,
                exc_info=exc,
            )
        return driver.out

    async def send_ordered(done: list[tuple[EventT, Outputs]]) -> list[asyncio.Future[Any]]:
        """Every output of the batch, in batch order; their acks are awaited before the
        records are written (a kill between the two then repeats them, never loses them)."""
        pending = []

        async def output(topic: str, key: bytes | None, model: Any) -> None:
            value = encode_output(model)
            headers = ce_headers(model, value)
            pending.append(await producer.send(topic, key, value, headers=headers))

        for _, out in done:
            for transition in out.transitions:
                await output(names.transitions, transition.lead_id.encode(), transition)
            for breach in out.breaches:  # like a transition: acked before its record is written
                await output(names.sla_breaches, breach.lead_id.encode(), breach)
            for erasure in out.erasures:  # likewise: the records go only once it is in Kafka
                erased = erasure.lead_id or erasure.anonymous_id or ""
                await output(names.erasures, erased.encode(), erasure)
            for subject, value, at in out.forward_bytes():
                pending.append(await producer.send(repartition, subject, value, timestamp=at))
            for lead, erasure in out.tombstones():  # before the updates: of the new life
                headers = cloudevents.tombstone_headers(lead, erasure, source=ce_source)
                tombstone = await producer.send(
                    names.score_updates, lead.encode(), None, headers=headers
                )
                pending.append(tombstone)
            for update in out.updates.values():
                await output(names.score_updates, update.lead_id.encode(), update)
            for letter_key, letter in out.dead_letters:
                await output(names.dead_letters, letter_key, letter)
        return pending

    async def flush(job: Flush) -> None:
        """The outputs' acks, then the records, then the inputs' acks."""
        started = time.perf_counter()
        if job.acks:
            await asyncio.gather(*job.acks)  # the records below depend on these acks
        for last, out in job.done:
            _enter(last)
            items = [
                (key.encode(), None if record is None else encode_record(record))
                for key, record in out.records.items()
            ]
            await writer.write(last.message.partition, items)
            for key, record in out.records.items():
                raw_key = key.encode()
                if raw_key in unwritten and unwritten[raw_key] is record:
                    del unwritten[raw_key]
                if record is None:  # erased: nothing of it stays in memory either
                    cache.forget(raw_key)
                    due.set(key, None)
                else:
                    cache.put(raw_key, record)
                    due.set(key, record.state.due_at)
            for erasure in out.erasures:  # ids of requests only: the person's are gone
                log.info(
                    "erase request %s applied on partition %d: %s (%d merged visitor(s))",
                    erasure.erasure_id,
                    last.message.partition,
                    "records deleted" if erasure.found else "nothing was held",
                    len(erasure.anonymous_ids),
                )
            metrics.count(out.counts)
        for event in job.events:  # the reference taken when the batch was scored
            if event.ack():
                message = event.message
                job.stream._on_message_out(message.tp, message.offset, message)
        pace.batch(len(job.events), time.perf_counter() - started)

    @app.task
    async def flusher() -> None:
        """Flushes batches one after the other, in order, while the agent scores the next."""
        while True:
            idle["flusher"] = True
            job = await flushes.get()
            idle["flusher"] = False
            try:
                await flush(job)
            except Exception as exc:  # nothing may be acked past a batch that was not written
                log.exception("flushing a batch failed; stopping the worker")
                await app.crash(exc)
                return

    @app.timer(interval=60.0, name="pace-log")
    async def pace_log() -> None:
        pace.log_and_reset()

    # Repartition messages wait until their partition's inputs are read up to their time
    # (stream_app/worker/ordering.py). Each input partition: (offset, timestamp) of its last record.
    order: TimeOrder[EventT] = TimeOrder()
    read: dict[Any, tuple[int, float]] = {}
    inputs_of = {p: [TP(topic, p) for topic in names.inputs] for p in range(partitions)}
    scoring = asyncio.Lock()  # the agent and the release timer score one at a time
    streams: list[Any] = []  # the agent's stream (the flusher's ack bookkeeping needs it)

    def read_to(partition: int) -> float:
        """How far in time this worker has read partition ``partition`` of every input."""
        consumer = cast(Any, app.consumer)
        seen = []
        for tp in inputs_of[partition]:
            last = read.get(tp)
            position = last[0] + 1 if last is not None else consumer._committed_offset.get(tp)
            try:
                end = consumer.highwater(tp)  # as of the last fetch; None before the first
            except Exception:  # not assigned (a rebalance is under way): not read
                end = None
            at_end = end is not None and end >= 0 and (position or 0) >= end
            seen.append((last[1] if last is not None else None, at_end))
        return frontier(seen)

    async def score_and_queue(
        stream: Any, arrived: dict[int, tuple[list[Any], list[Any]]], last_timestamp: float | None
    ) -> None:
        """Order, score and send what may be handled now; queue its flush."""
        consumer = cast(Any, app.consumer)
        for partition in order.partitions():
            arrived.setdefault(partition, ([], []))  # held messages may be due now
        by_partition: dict[int, list[EventT]] = {}
        for partition, (inputs, internal) in arrived.items():
            group = order.arrange(partition, inputs, internal, read_to(partition))
            if group:
                by_partition[partition] = group
        for _, event in order.held():
            # Held, not in flight: Faust waits for in-flight messages before a rebalance,
            # and a held one is forgotten then (it is read again from the committed offset).
            consumer._unacked_messages.discard(event.message)
        if not by_partition:
            return
        done = []
        for partition, group in by_partition.items():
            for event in group:
                consumer._unacked_messages.add(event.message)  # in flight until written
            _enter(group[-1])
            out = score_partition(partition, group)
            for key, record in out.records.items():
                unwritten[key.encode()] = record
            done.append((group[-1], out))
        if last_timestamp is not None:
            metrics.observe_lag(last_timestamp)
        kept = [event for group in by_partition.values() for event in group]
        await flushes.put(Flush(stream, done, await send_ordered(done), kept))

    @app.agent(ctx.source, name="score")
    async def score_agent(stream: StreamT[bytes]) -> None:
        streams[:] = [stream]
        batches = cast(Any, stream).take_events(  # typed on Stream, not on StreamT
            settings.batch_max_events, settings.batch_max_seconds
        )
        waited_from = time.perf_counter()
        idle["agent"] = True
        async for events in batches:
            idle["agent"] = False
            body_from = time.perf_counter()
            pace.waited(body_from - waited_from)
            async with scoring:
                generation = app.consumer_generation_id
                arrived: dict[int, tuple[list[Any], list[Any]]] = {}
                for event in events:
                    message = event.message
                    handed[message.tp] = handed.get(message.tp, 0) + 1
                    if message.generation_id != generation:
                        continue  # fetched before a rebalance: the partition's new owner takes it
                    # One more reference: take_events acks the batch when this body returns;
                    # the flusher acks a message for good once its records are written.
                    message.incref()
                    inputs, internal = arrived.setdefault(message.partition, ([], []))
                    if message.topic == repartition:
                        internal.append((message.timestamp, event))
                    else:
                        inputs.append((message.timestamp, event))
                        read[message.tp] = (message.offset, message.timestamp)
                if arrived:
                    await score_and_queue(stream, arrived, events[-1].message.timestamp)
            waited_from = time.perf_counter()
            pace.scored(waited_from - body_from)
            idle["agent"] = True

    @app.timer(interval=0.1, name="release-held")
    async def release_held() -> None:
        """Score held repartition messages whose inputs were read meanwhile, with no batch."""
        consumer = cast(Any, app.consumer)
        if not order.waiting() or not streams or app.rebalancing or not consumer.flow_active:
            return
        async with scoring:
            await score_and_queue(streams[0], {}, None)

    stalls = Stalls()

    @app.timer(interval=settings.stall_check_seconds, name="partition-watch")
    async def watch() -> None:
        """Log (and seek back) a partition with a backlog that reaches no agent (watch.py)."""
        consumer = cast(Any, app.consumer)
        if app.rebalancing or not consumer.flow_active:
            stalls.forget()
            return
        if not (idle["agent"] and idle["flusher"] and flushes.empty()):
            return  # busy: a partition may simply wait its turn
        changelogs = app.tables.changelog_topics
        committed, end = consumer._committed_offset.get, consumer.highwater
        snapshots: dict[Any, Snapshot] = {
            tp: Snapshot(committed(tp), end(tp), handed.get(tp, 0))
            for tp in consumer.assignment()
            if tp.topic not in changelogs
        }
        stalled: list[Any] = stalls.check(snapshots)
        for tp in stalled:
            held = order.waiting(tp.partition) if tp.topic == repartition else 0
            log.warning(
                "partition %s:%d has records waiting and none reached the scoring "
                "agent since the last two checks: %s; repartition messages held on "
                "partition %d: %d",
                tp.topic,
                tp.partition,
                describe(consumer, tp, snapshots[tp]),
                tp.partition,
                order.waiting(tp.partition),
            )
            if held or consumer._acked.get(tp):
                continue  # waits for its inputs, or acks are on their way: not a lost fetch
            # Faust's answer to records it dropped (a seek back to the committed offset)
            # did not come: give it (finding 9 in docs/reliability.md).
            offset = snapshots[tp].committed or 0
            await consumer.seek_wait({tp: offset})
            log.warning(
                "partition %s:%d sought back to its committed offset %d",
                tp.topic,
                tp.partition,
                offset,
            )

    @app.timer(interval=settings.sweep_interval_seconds, name="decay-sweep")
    async def decay_sweep() -> None:
        started = time.perf_counter()
        now = time.time()
        keys = due.pop_due(now, limit=10_000)
        for key in keys:
            tick = Tick(to=key, now=now)
            await producer.send(repartition, routing_key(tick).encode(), encode_internal(tick))
        metrics.swept(time.perf_counter() - started)
        if keys:
            log.info("decay sweep: %d lead(s) due, %d waiting", len(keys), len(due))

    @app.task
    async def project() -> None:
        """The Redis projection in a child process (``python -m stream_app projector``), so
        writing Redis never takes the scoring process's CPU; restarted if it exits."""
        if settings.projector != "child":
            return
        while True:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "stream_app", "projector", preexec_fn=die_with_parent
            )
            try:
                code = await child.wait()
            except asyncio.CancelledError:  # the worker is stopping
                if child.returncode is None:
                    child.terminate()
                    with contextlib.suppress(ProcessLookupError, TimeoutError):
                        await asyncio.wait_for(child.wait(), 10)
                raise
            log.error("the projection process exited with %s; starting it again in 2 s", code)
            await asyncio.sleep(2)

    def forget_cached_records(sender: Any, /, *args: Any, signal: Any, **kw: Any) -> None:
        cache.clear()  # partitions may have moved: the table is the truth again
        # Every assigned partition is sought to its committed offset after a rebalance:
        # held messages and read positions are read again.
        order.clear()
        read.clear()

    app.on_partitions_revoked.connect(forget_cached_records)
    app.on_partitions_assigned.connect(forget_cached_records)

    def gauges() -> Iterator[Metric]:
        """Read from Faust's consumer when /metrics is scraped."""
        consumer = cast(Any, app.consumer)
        lag = GaugeMetricFamily(
            "leadstream_consumer_lag",
            "records not yet committed, per partition the worker owns",
            labels=["topic", "partition"],
        )
        assigned = 0
        changelogs = app.tables.changelog_topics
        try:
            assignment = consumer.assignment()
        except Exception:  # not started yet
            assignment = set()
        for tp in sorted(assignment):
            if tp.topic in changelogs or tp.topic.endswith("-__assignor-__leader"):
                continue  # Faust's own: the changelogs, and the leader-election topic
            assigned += 1
            try:
                end = consumer.highwater(tp)
            except Exception:  # a rebalance took it meanwhile
                continue
            if end is not None and end >= 0:
                committed = consumer._committed_offset.get(tp) or 0
                lag.add_metric([tp.topic, str(tp.partition)], max(0, end - committed))
        yield lag
        rebalances = CounterMetricFamily("leadstream_rebalances", "consumer group rebalances")
        rebalances.add_metric([], app.rebalancing_count)
        yield rebalances
        for name, help_text, value in (
            ("assigned_partitions", "input and repartition partitions this worker owns", assigned),
            ("held_messages", "repartition messages waiting for their inputs", order.waiting()),
            ("cached_records", "decoded records in the record cache", len(cache)),
            ("unwritten_records", "records scored, waiting for their batch's acks", len(unwritten)),
            ("due_leads", "leads in the decay sweep's index", len(due)),
            (
                "ready",
                "1 once recovery is done and partitions are assigned",
                int(not_ready() is None),
            ),
        ):
            yield GaugeMetricFamily(f"leadstream_{name}", help_text, value)

    def not_alive() -> str | None:
        crashed = cast(Any, app)._crashed
        return f"crashed: {app.crash_reason!r}" if crashed.is_set() else None

    def not_ready() -> str | None:
        if not_alive() is not None:
            return not_alive()
        recovery = getattr(app.tables, "recovery", None)
        if recovery is None or not recovery.completed.is_set():
            return "restoring the records table"
        if app.rebalancing:
            return "rebalancing"
        try:
            assignment = cast(Any, app.consumer).assignment()
        except Exception:
            assignment = set()
        if not assignment:
            return "no partitions assigned"
        return None

    registry = CollectorRegistry()
    registry.register(Collector(metrics, gauges))
    http = create_worker_http(Probes(alive=not_alive, ready=not_ready), registry)

    @app.task
    async def serve_http() -> None:
        """/health, /ready and /metrics on LEADSTREAM_WORKER_PORT (worker_http.py)."""
        try:
            runner = await serve(
                http,
                settings.worker_host,
                settings.worker_port,
                header_timeout=settings.http_header_timeout_seconds,
                body_timeout=settings.http_body_timeout_seconds,
            )
        except OSError as exc:  # e.g. the port is taken: say so, and stop the worker
            log.error(
                "cannot serve health and metrics on %s:%d (%s); set "
                "LEADSTREAM_WORKER_PORT (0: any free port)",
                settings.worker_host,
                settings.worker_port,
                exc,
            )
            raise
        try:
            await asyncio.Event().wait()  # until the worker stops (cancelled)
        finally:
            await runner.cleanup()

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
            log.info(
                "due index rebuilt from %d local record(s) in %.1fs; %d due later",
                seen,
                time.monotonic() - started,
                len(due),
            )
            await asyncio.sleep(settings.sweep_rescan_seconds)

    def reload_rules() -> None:
        """SIGHUP: read LEADSTREAM_RULES_PATH again; a file with errors is refused and the
        rules in force stay. Applied from the next batch (and so the next sweep) on."""
        try:
            new = load_rules(settings.rules_path)
        except RulesError as exc:
            log.error("rules reload refused; the rules %s stay in force: %s", current[0].stamp, exc)
            metrics.count({"rules_reloads_total|outcome=refused": 1})
            return
        old, current[0] = current[0], new
        metrics.count({"rules_reloads_total|outcome=applied": 1})
        # The switch's event time: the reload's clock, in whole milliseconds so that
        # `simulate --switch-rules LINE:PATH@TIME` given the logged time uses the same float.
        at = int(time.time() * 1000) / 1000
        log.info(
            "rules reloaded: %s from %s (was %s); they apply from the next batch; every "
            "lead is re-evaluated at %s (switch at %r)",
            new.stamp,
            new.source,
            old.stamp,
            datetime.fromtimestamp(at, UTC).isoformat(),
            at,
        )
        task = asyncio.get_running_loop().create_task(switch_every_lead(at))
        switching.add(task)
        task.add_done_callback(switching.discard)

    switching: set[asyncio.Task[None]] = set()

    async def switch_every_lead(at: float) -> None:
        """After a reload: a ``switch`` message for every lead this worker holds, through
        the repartition topic as the sweep's ticks go, so each lead is re-evaluated
        against the new lines at ``at`` (``engine.switch_rules``) without waiting for its
        next event. A rebalance under way starts the walk again (a second switch of a lead
        at the same time changes nothing)."""
        while True:
            sent = 0
            try:
                # Records of a batch still in flight first (not in the table yet), then the
                # table's, one at a time (RocksDB iterators read a snapshot).
                fresh = [k for k, record in unwritten.items() if record is not None]
                stored = (k for k, _ in records.items() if k not in unwritten)
                for raw_key in itertools.chain(fresh, stored):
                    key = raw_key.decode()
                    if key.startswith(ANONYMOUS_PREFIX):
                        continue
                    switch = RulesSwitch(to=key, at=at)
                    await producer.send(
                        repartition, routing_key(switch).encode(), encode_internal(switch)
                    )
                    sent += 1
                    if sent % 2000 == 0:
                        await asyncio.sleep(0)
            except RuntimeError as exc:
                if "changed size during iteration" not in str(exc):
                    raise
                log.info("rules switch interrupted by a rebalance (%s); again in 5 s", exc)
                await asyncio.sleep(5)
                continue
            log.info("rules switch at %r: %d lead(s) sent for re-evaluation", at, sent)
            return

    @app.task
    async def listen_for_reload() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_rules)

    @app.task
    async def announce() -> None:
        log.info(
            "Leadstream worker: rules %s from %s; brokers %s; store %s; batches of %d / %.3fs",
            current[0].stamp,
            current[0].source,
            settings.kafka_bootstrap,
            settings.store,
            settings.batch_max_events,
            settings.batch_max_seconds,
        )
