"""The live pipeline as plain functions over one partition's batch; Faust only moves bytes.

    input topics ──(on the subject's partition?)──yes──► score here
                          │ no
                          └──► repartition topic, keyed by subject (one hop) ──► score there

The partitioning contract: a subject's record (a lead, or an anonymous
visitor) lives on the partition its id hashes to with Kafka's default
partitioner (murmur2 of the UTF-8 id, as the Java client and aiokafka do).
Input keyed by subject (RudderStack keys by ``userId``, else
``anonymousId``) is scored where it arrives; anything else takes one hop.

Identity lives in the records. An anonymous visitor's record knows the lead
it joined (``merged_into``); a lead's record knows which anonymous ids it
absorbed or asked for. The first event carrying both ids makes the lead send a
``claim`` to the visitor's partition and hold its own events; the visitor
answers with its history (``absorb``) and becomes a tombstone pointing at the
lead, or says it had already joined another lead (the first link wins). The
lead merges, then applies the held events in order, exactly as the offline
replay merges and then applies the identifying event. Claims between two
subjects of the same partition are answered in place, without a hop.

An ``erase`` request is an input event like the others, so it takes its
place in the person's order (a lead waiting for a claim's answer holds it
too). An e-mail address a lead's event tells is claimed like an anonymous id,
by its pseudonym (``identity.email_link``), after the event's anonymous id, so
an erase by address reaches the lead. Erasing a lead deletes its record and
sends an ``erase`` to each anonymous id it merged or linked, whose record goes
if it joined this lead; an erase naming a merged visitor (a cookie, an
address's pseudonym) goes to its lead, like any of its events. A visitor that
joined no lead and tells an address sends ``told`` to the address's
pseudonym, which keeps a pointer to it; an erase by that address then follows
the pointers one record after the other (``trail``: the pseudonym's lead,
then each visitor, or the lead it has joined since, waiting behind that
lead's claims like an erase) and the last record publishes the one erasure.

``PartitionBatch`` is the one effects driver: the Faust agent, the in-memory
pipeline below and the benchmark's ceiling all run it. It reads records
through ``load`` and hands back what to do, in this order (docs/guarantees.md):

1. send ``transitions``, ``breaches`` (SLA), ``erasures``, ``forwards``,
   ``erased`` (a tombstone on the score updates per erased lead, before)
   ``updates`` (the newest score update per lead of this batch) and
   ``dead_letters``, and wait for the broker's acks;
2. write each changed record once (``records``; ``None``: delete the key);
3. acknowledge the batch's input messages (offsets are committed after the
   producer is flushed).

A record is written only after the outputs it caused are in Kafka, so a
crash at any point leaves either the old record (the batch is processed
again: the same outputs, with the same ids) or the new one with its
outputs delivered.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from aiokafka.partitioner import murmur2

from schemas.base import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from schemas.dead_letter import DeadLetter
from schemas.erasures import ErasureEvent
from schemas.events import Erase, InboundEvent, InputEvent
from schemas.transitions import ScoreUpdate, SlaBreach, StageTransition
from stream_app.codec import (
    dead_letter,
    decode,
    decode_internal,
    decode_record,
    encode_internal,
    encode_record,
)
from stream_app.ingest.segment import Ignored
from stream_app.ingest.tracks import Tracks
from stream_app.messages import (
    Absorb,
    Claim,
    EraseTrail,
    EraseVisitor,
    EventMessage,
    Internal,
    Record,
    RulesSwitch,
    Tick,
    Told,
)
from stream_app.scoring.engine import (
    advance,
    apply_event,
    merge_anonymous,
    score_update,
    state_key,
    switch_rules,
)
from stream_app.scoring.erasure import erasure_by_address, erasure_of
from stream_app.scoring.identity import email_link, tombstone
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import ANONYMOUS_PREFIX, LeadState, anonymous_key, new_state
from stream_app.scoring.view import ScoreView


@lru_cache(maxsize=1 << 16)
def partition_of(subject: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2) for a subject id: where its record lives."""
    return (murmur2(subject.encode()) & 0x7FFFFFFF) % partitions


def subject_of(key: str) -> str:
    """The id a record key is partitioned by: a lead id, or the bare anonymous id."""
    return key.removeprefix(ANONYMOUS_PREFIX)


def routing_key(message: Internal) -> str:
    """The subject a repartition-topic message is keyed by."""
    if isinstance(message, Claim):
        return message.anonymous_id
    if isinstance(message, Absorb):
        return message.lead_id
    return subject_of(message.to)


@dataclass
class Outputs:
    """What one batch of one partition asks the wiring to do (see the module docstring)."""

    transitions: list[StageTransition] = field(default_factory=list)
    breaches: list[SlaBreach] = field(default_factory=list)  # sent with the transitions
    erasures: list[ErasureEvent] = field(default_factory=list)  # sent with the transitions
    # (subject, message, the Kafka timestamp of the message that caused it, in seconds)
    forwards: list[tuple[str, Internal, float | None]] = field(default_factory=list)
    # what to write per key; None deletes it (a table delete and a changelog tombstone)
    records: dict[str, Record | None] = field(default_factory=dict)
    # leads erased in this batch, in order: a tombstone each on the score updates, sent
    # before ``updates`` (which then only holds updates from after the erasure)
    erased: list[str] = field(default_factory=list)
    # the erasure of each of ``erased`` (its tombstone's CloudEvent id and time): the one
    # published here, or, for an erase by address still on its trail, the request's
    erased_by: list[ErasureEvent] = field(default_factory=list)
    updates: dict[str, ScoreUpdate] = field(default_factory=dict)  # lead id -> newest
    dead_letters: list[tuple[bytes | None, DeadLetter]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # for metrics

    def forward_bytes(self) -> Iterator[tuple[bytes, bytes, float | None]]:
        for subject, message, timestamp in self.forwards:
            yield subject.encode(), encode_internal(message), timestamp

    def tombstones(self) -> Iterator[tuple[str, ErasureEvent]]:
        """Each erased lead with the erasure that erased it (its tombstone's CloudEvent)."""
        yield from zip(self.erased, self.erased_by, strict=True)


_MISSING = object()


class PartitionBatch:
    """Handles one partition's messages in order; records are read once and written once."""

    def __init__(
        self,
        partition: int,
        partitions: int,
        rules: Rules,
        load: Callable[[str], Record | None],
        tracks: Tracks | None = None,
        max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    ) -> None:
        self.partition = partition
        self.tracks = tracks
        self.max_clock_skew = max_clock_skew
        self.partitions = partitions
        self.rules = rules
        self._load = load
        self._out = Outputs()
        # lead id -> what its newest score update is built from; built once, when read
        self._pending: dict[str, tuple[LeadState, ScoreView | None, float | None, str | None]] = {}
        self._local: deque[Internal] = deque()
        self._timestamp: float | None = None  # of the message being handled (its forwards')
        self._undo: dict[str, object] = {}
        self._undo_updates: dict[str, object] = {}
        self.errors: list[Exception] = []  # quarantined failures, for the wiring's log

    @property
    def out(self) -> Outputs:
        """What the batch asks for so far; score updates are built here, the newest only."""
        for lead, (state, view, now, event_id) in self._pending.items():
            self._out.updates.pop(lead, None)  # re-inserted last: updates leave in order
            self._out.updates[lead] = score_update(
                state, self.rules, now=now, view=view, event_id=event_id
            )
        self._pending.clear()
        return self._out

    # --- entry points: one message at a time -----------------------------------------

    def input(
        self,
        value: bytes | None,
        *,
        topic: str,
        offset: int,
        key: bytes | None,
        timestamp: float | None = None,
    ) -> None:
        """A message from an input topic: validated here, once. ``timestamp`` (Kafka's, in
        seconds) bounds the event's time (``codec.ahead_of_arrival``) and is handed on to
        the messages it causes on the repartition topic."""
        self._timestamp = timestamp
        decoded = decode(
            value,
            topic=topic,
            partition=self.partition,
            offset=offset,
            key=key,
            tracks=self.tracks,
            arrived_at=timestamp,
            max_clock_skew=self.max_clock_skew,
        )
        if isinstance(decoded, Ignored):
            self._out.counts[f"events_ignored_total|name={decoded.label}"] += 1
            return
        if isinstance(decoded, DeadLetter):
            self._out.dead_letters.append((key, decoded))
            self._out.counts[f"dead_letters_total|reason={decoded.reason}"] += 1
            return
        self._out.counts[f"events_in_total|type={decoded.type}"] += 1
        message = EventMessage.model_construct(to=state_key(decoded), event=decoded)
        self._guarded(message, value, topic, offset, key)

    def internal(
        self,
        value: bytes,
        *,
        topic: str,
        offset: int,
        key: bytes | None,
        timestamp: float | None = None,
    ) -> None:
        """A message from the repartition topic (written by a worker: trusted)."""
        self._timestamp = timestamp
        try:
            message = decode_internal(value)
        except Exception as exc:  # a bug or a foreign writer: keep it, keep going
            self._quarantine(value, topic, offset, key, exc)
            return
        self._guarded(message, value, topic, offset, key)

    def message(self, message: Internal) -> None:
        """An internal message already decoded (the in-memory pipeline, the sweep)."""
        self._timestamp = None
        self._guarded(message, encode_internal(message), None, None, None)

    # --- dispatch ----------------------------------------------------------------

    def _guarded(
        self,
        message: Internal,
        raw: bytes | None,
        topic: str | None,
        offset: int | None,
        key: bytes | None,
    ) -> None:
        """Run one message and what it causes on this partition; a failure undoes it all."""
        out = self._out
        marks = (
            len(out.transitions),
            len(out.forwards),
            len(out.breaches),
            len(out.erasures),
            len(out.erased),
            len(out.erased_by),
        )
        self._undo.clear()
        self._undo_updates.clear()
        try:
            self._send(message)
            while self._local:
                self._dispatch(self._local.popleft())
        except Exception as exc:  # a bug must not stop scoring for everyone
            self._local.clear()
            del self._out.transitions[marks[0] :], self._out.forwards[marks[1] :]
            del self._out.breaches[marks[2] :], self._out.erasures[marks[3] :]
            del self._out.erased[marks[4] :], self._out.erased_by[marks[5] :]
            for k, before in self._undo.items():
                if before is _MISSING:
                    self._out.records.pop(k, None)
                else:
                    self._out.records[k] = before  # type: ignore[assignment]
            for k, before in self._undo_updates.items():
                if before is _MISSING:
                    self._pending.pop(k, None)
                else:
                    self._pending[k] = before  # type: ignore[assignment]
            self._quarantine(raw or b"", topic, offset, key, exc)

    def _quarantine(
        self, raw: bytes, topic: str | None, offset: int | None, key: bytes | None, exc: Exception
    ) -> None:
        letter = dead_letter(
            raw,
            "processing_error",
            f"score: {type(exc).__name__}: {exc}",
            topic=topic,
            partition=self.partition,
            offset=offset,
            key=key,
        )
        self._out.dead_letters.append((key, letter))
        self._out.counts["dead_letters_total|reason=processing_error"] += 1
        self._out.counts["processing_errors_total"] += 1
        self.errors.append(exc)

    def _send(self, message: Internal) -> None:
        """Handle a message here if its subject lives on this partition, else forward it."""
        subject = routing_key(message)
        if partition_of(subject, self.partitions) == self.partition:
            self._local.append(message)
        else:
            self._out.forwards.append((subject, message, self._timestamp))
            self._out.counts[f"forwarded_total|kind={message.kind}"] += 1

    def _dispatch(self, message: Internal) -> None:
        if isinstance(message, EventMessage):
            self._event(message.to, message.event)
        elif isinstance(message, Claim):
            self._claim(message)
        elif isinstance(message, Absorb):
            self._absorb(message)
        elif isinstance(message, EraseVisitor):
            self._erase_visitor(message)
        elif isinstance(message, RulesSwitch):
            self._switch(message)
        elif isinstance(message, Told):
            self._told(message)
        elif isinstance(message, EraseTrail):
            self._trail(message)
        else:
            self._tick(message)

    # --- records --------------------------------------------------------------------

    def _get(self, key: str) -> Record | None:
        if key in self._out.records:
            return self._out.records[key]
        record = self._load(key)
        return record.copy_for_change() if record is not None else None

    def _put(self, key: str, record: Record | None) -> None:
        """Write ``record`` under ``key`` at the end of the batch (None: delete the key)."""
        if key not in self._undo:
            self._undo[key] = self._out.records.get(key, _MISSING)
        self._out.records[key] = record

    def _update(
        self,
        state: LeadState,
        view: ScoreView | None = None,
        now: float | None = None,
        event_id: str | None = None,
    ) -> None:
        lead = state.lead_id
        assert lead is not None
        if lead not in self._undo_updates:
            self._undo_updates[lead] = self._pending.get(lead, _MISSING)
        self._pending.pop(lead, None)  # re-inserted last: updates leave in order
        self._pending[lead] = (state, view, now, event_id)

    def _forget_update(self, lead: str) -> None:
        """Drop the lead's pending score update: its erasure supersedes it."""
        if lead in self._pending:
            if lead not in self._undo_updates:
                self._undo_updates[lead] = self._pending[lead]
            del self._pending[lead]

    # --- the eight kinds of message ------------------------------------------------------

    def _event(self, key: str, event: InputEvent) -> None:
        record = self._get(key)
        if record is not None and record.told_by and isinstance(event, Erase):
            self._erase_told(key, record, event)  # an address told by visitors
            return
        if record is not None and record.state.merged_into is not None:
            # a merged anonymous visitor: what still comes for it belongs to the lead
            lead = record.state.merged_into
            self._send(EventMessage(to=lead, event=event))
            return
        found = record
        if not key.startswith(ANONYMOUS_PREFIX):
            if record is None:
                record = Record.of(new_state(key, key))
            if record.awaiting:
                record.held.append(event)
                self._put(key, record)
                self._out.counts["events_held_total"] += 1
                return
            if isinstance(event, Erase):
                self._erase(key, found, event)
                return
            anon = _unknown(record, event)
            if anon is not None:
                record.awaiting.append(anon)
                record.held.append(event)
                self._put(key, record)
                self._send(Claim(anonymous_id=anon, lead_id=key))
                return
        if isinstance(event, Erase):
            self._erase(key, found, event)
            return
        self._apply(key, record, event)
        if key.startswith(ANONYMOUS_PREFIX):  # a visitor that joined no lead
            pseudonym = email_link(event)
            if pseudonym is not None:
                self._send(Told(to=anonymous_key(pseudonym), anonymous_id=subject_of(key)))

    def _apply(self, key: str, record: Record | None, event: InboundEvent) -> None:
        outcome = apply_event(record.state if record else None, event, self.rules, key=key)
        self._out.counts[f"events_scored_total|status={outcome.status}"] += 1
        if record is None:
            record = Record.of(outcome.state)
        else:
            record.state = outcome.state
        self._put(key, record)
        self._publish(outcome.transitions, outcome.breaches)
        state = outcome.state
        if state.lead_id is not None:
            # also for a duplicate: a redelivery after a crash repairs a lost projection update
            self._update(state, view=outcome.view, event_id=event.event_id)

    def _publish(
        self, transitions: tuple[StageTransition, ...], breaches: tuple[SlaBreach, ...] = ()
    ) -> None:
        self._out.breaches += breaches  # before the transitions: earlier in event time
        self._out.transitions += transitions
        for transition in transitions:
            self._out.counts[f"transitions_total|to_stage={transition.to_stage}"] += 1
        for breach in breaches:
            self._out.counts[f"sla_breaches_total|stage={breach.stage}"] += 1

    def _claim(self, claim: Claim) -> None:
        key = anonymous_key(claim.anonymous_id)
        record = self._get(key)
        joined = record.state.merged_into if record is not None else None
        if joined is not None:
            # repeated (after a crash) or too late: the first link won
            self._send(
                Absorb(lead_id=claim.lead_id, anonymous_id=claim.anonymous_id, taken_by=joined)
            )
            return
        # an address's pseudonym keeps the visitors that told it; one nobody sent events
        # as has no history to give
        told_by = record.told_by if record is not None else []
        self._put(key, Record.of(tombstone(key, claim.lead_id), told_by))
        self._send(
            Absorb(
                lead_id=claim.lead_id,
                anonymous_id=claim.anonymous_id,
                state=record.history if record is not None else None,
            )
        )

    def _absorb(self, absorb: Absorb) -> None:
        key = absorb.lead_id
        record = self._get(key)
        if record is None:
            record = Record.of(new_state(key, key))
        if absorb.state is not None:
            record.state, _ = merge_anonymous(record.state, absorb.state, self.rules)
            self._out.counts["merges_total"] += 1
        record.link(absorb.anonymous_id)
        if absorb.anonymous_id in record.awaiting:
            record.awaiting.remove(absorb.anonymous_id)
        self._put(key, record)
        if record.awaiting or not record.held:
            return
        held, record.held = record.held, []
        for item in held:  # in arrival order; one may claim again and hold the rest
            if isinstance(item, EraseTrail):
                self._trail(item)
            else:
                self._event(key, item)

    def _tick(self, tick: Tick) -> None:
        record = self._get(tick.to)
        if record is None or record.state.lead_id is None:
            return
        outcome = advance(record.state, self.rules, tick.now)
        if not outcome.transitions and not outcome.breaches:
            return
        record.state = outcome.state
        self._put(tick.to, record)
        self._publish(outcome.transitions, outcome.breaches)
        # scored at the sweep's "now", so a demoted lead shows its decayed score
        self._update(outcome.state, now=tick.now)

    def _switch(self, switch: RulesSwitch) -> None:
        """The rules in force were reloaded at ``switch.at``: re-evaluate the lead now."""
        self._out.counts["rules_switches_total"] += 1
        record = self._get(switch.to)
        if record is None:
            return
        outcome = switch_rules(record.state, self.rules, switch.at)
        if outcome.state is record.state:
            return
        record.state = outcome.state
        self._put(switch.to, record)
        if outcome.transitions or outcome.breaches:
            self._publish(outcome.transitions, outcome.breaches)
            self._update(outcome.state, view=outcome.view)

    def _erase(self, key: str, record: Record | None, request: Erase) -> None:
        """Erase the subject ``key`` (its record is ``record``, None if it has none).

        A lead: its record goes, with its held events; every anonymous id it merged
        or linked gets an ``erase`` (the record goes if it joined this lead), its
        projection a tombstone. A visitor that joined no lead: its record goes.
        Nothing held is no error (a redelivered request finds nothing): the
        erasure is published either way, so a caller always gets an answer.
        """
        lead = None if key.startswith(ANONYMOUS_PREFIX) else key
        erasure = erasure_of(request, lead_id=lead, found=record.state if record else None)
        if lead is not None:
            self._erase_lead(lead, record, erasure)
        elif record is not None:
            self._put(key, None)
        self._publish_erasure(erasure)

    def _erase_lead(self, lead: str, record: Record | None, erasure: ErasureEvent) -> None:
        """Delete the lead's record, send an ``erase`` to each anonymous id it merged or
        linked, and put a tombstone (``erasure``'s) on its score updates."""
        if record is not None:
            self._put(lead, None)
            visitors = dict.fromkeys([*record.state.merged_anonymous, *record.linked])
            for anonymous_id in visitors:
                self._send(EraseVisitor(to=anonymous_key(anonymous_id), lead_id=lead))
        self._forget_update(lead)
        self._out.erased.append(lead)
        self._out.erased_by.append(erasure)

    def _publish_erasure(self, erasure: ErasureEvent) -> None:
        self._out.erasures.append(erasure)
        self._out.counts[f"erasures_total|found={str(erasure.found).lower()}"] += 1

    def _erase_visitor(self, message: EraseVisitor) -> None:
        record = self._get(message.to)
        if record is not None and record.state.merged_into == message.lead_id:
            self._put(message.to, Record.pointers(message.to, record.told_by))

    def _told(self, told: Told) -> None:
        """A visitor joined to no lead told the address whose pseudonym's record this is."""
        record = self._get(told.to) or Record.of(new_state(told.to, None))
        if record.tell(told.anonymous_id):  # not a redelivery, nor the visitor telling again
            self._put(told.to, record)

    def _erase_told(self, key: str, record: Record, request: Erase) -> None:
        """An erase by an address that visitors told: its trail starts at the pseudonym's
        lead if it joined one (else the pseudonym's own history goes here), then goes
        through each visitor, in the order they told it (``Replay._erase_told``)."""
        lead = record.state.merged_into
        found = lead is None and record.history is not None
        targets = [*([lead] if lead is not None else []), *map(anonymous_key, record.told_by)]
        if lead is None:
            self._put(key, None)
        else:  # the tombstone goes with the lead's erasure; its pointers are followed now
            record.told_by = []
            self._put(key, record)
        self._send(EraseTrail(to=targets[0], request=request, rest=targets[1:], found=found))

    def _trail(self, trail: EraseTrail) -> None:
        """Erase the record ``trail.to`` (a visitor that told the address, or a lead),
        then pass the trail on; the last record publishes the request's one erasure."""
        key, record = trail.to, self._get(trail.to)
        lead_ids, anonymous_ids, found = (
            list(trail.lead_ids),
            list(trail.anonymous_ids),
            trail.found,
        )
        if key.startswith(ANONYMOUS_PREFIX):
            joined = record.state.merged_into if record is not None else None
            if joined is not None:
                if joined not in lead_ids:  # the visitor is the lead's now: erase the lead
                    self._send(trail.model_copy(update={"to": joined}))
                    return
            elif record is not None:
                if record.history is not None:
                    found = True
                    anonymous_ids.append(subject_of(key))
                self._put(key, Record.pointers(key, record.told_by))
        else:
            if record is not None and record.awaiting:  # behind its claims, as an erase waits
                record.held.append(trail)
                self._put(key, record)
                self._out.counts["events_held_total"] += 1
                return
            state = record.state if record is not None else None
            self._erase_lead(key, record, erasure_of(trail.request, lead_id=key, found=state))
            lead_ids.append(key)
            if state is not None:
                found = True
                anonymous_ids += state.merged_anonymous
        if trail.rest:
            self._send(
                EraseTrail(
                    to=trail.rest[0],
                    request=trail.request,
                    rest=trail.rest[1:],
                    lead_ids=lead_ids,
                    anonymous_ids=anonymous_ids,
                    found=found,
                )
            )
            return
        self._publish_erasure(
            erasure_by_address(
                trail.request, lead_ids=lead_ids, anonymous_ids=anonymous_ids, found=found
            )
        )


def _unknown(record: Record, event: InboundEvent) -> str | None:
    """The first id ``event`` links to the lead of ``record`` that it has not claimed yet:
    the event's anonymous id, then the pseudonym of an address it tells (the order the
    offline replay links them in; one claim at a time, so merges happen in that order)."""
    for anon in (event.anonymous_id, email_link(event)):
        if anon is not None and not record.knows(anon):
            return anon
    return None


# --- an in-memory run over N partitions (tests, and the offline comparison) ----------


@dataclass
class InMemoryPipeline:
    """The driver over dicts, partition by partition, with the repartition topic as queues.

    ``feed`` puts a message on the partition its key hashes to (or on
    ``partition``); ``run`` processes every partition's pending messages in
    batches until nothing is left in flight. Records go through bytes, as
    they do through RocksDB.
    """

    rules: Rules
    partitions: int = 4
    batch: int = 50
    records: dict[str, bytes] = field(default_factory=dict)
    transitions: list[StageTransition] = field(default_factory=list)
    breaches: list[SlaBreach] = field(default_factory=list)
    updates: list[ScoreUpdate] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    inputs: dict[int, deque[tuple[str, bytes | None, bytes | None]]] = field(default_factory=dict)
    on_outputs: Callable[[int, Outputs], None] | None = None

    def feed(
        self,
        raw: bytes | None,
        *,
        key: bytes | None = None,
        topic: str = "page_views",
        partition: int | None = None,
    ) -> None:
        if partition is None:
            partition = partition_of(key.decode(), self.partitions) if key is not None else 0
        self.inputs.setdefault(partition, deque()).append((topic, key, raw))

    def tick(self, now: float) -> None:
        for key in list(self.records):
            tick: Internal = Tick(to=key, now=now)
            p = partition_of(routing_key(tick), self.partitions)
            self.inputs.setdefault(p, deque()).append(("", None, encode_internal(tick)))
        self.run()

    def switch(self, rules: Rules, at: float) -> None:
        """Score with ``rules`` from now on, and re-evaluate every lead at ``at`` (a reload)."""
        self.rules = rules
        for key in list(self.records):
            if not key.startswith(ANONYMOUS_PREFIX):
                self._internal(RulesSwitch(to=key, at=at))
        self.run()

    def _internal(self, message: Internal) -> None:
        p = partition_of(routing_key(message), self.partitions)
        self.inputs.setdefault(p, deque()).append(("", None, encode_internal(message)))

    def run(self) -> None:
        offsets: Counter[int] = Counter()
        while any(self.inputs.values()):
            for p in range(self.partitions):
                queue = self.inputs.get(p)
                if not queue:
                    continue
                driver = PartitionBatch(
                    p, self.partitions, self.rules, lambda k: decode_record(self.records.get(k))
                )
                for _ in range(min(self.batch, len(queue))):
                    topic, key, raw = queue.popleft()
                    offsets[p] += 1
                    if topic:
                        driver.input(raw, topic=topic, offset=offsets[p], key=key)
                    else:
                        assert raw is not None
                        driver.internal(raw, topic="repartition", offset=offsets[p], key=key)
                out = driver.out
                if self.on_outputs is not None:
                    self.on_outputs(p, out)
                self.transitions += out.transitions
                self.breaches += out.breaches
                for subject, raw_message, _ in out.forward_bytes():
                    target = partition_of(subject.decode(), self.partitions)
                    self.inputs.setdefault(target, deque()).append(("", subject, raw_message))
                for k, record in out.records.items():
                    if record is None:
                        self.records.pop(k, None)
                    else:
                        self.records[k] = encode_record(record)
                self.updates += out.updates.values()
                self.dead_letters += [letter for _, letter in out.dead_letters]

    def record(self, key: str) -> Record | None:
        return decode_record(self.records.get(key))

    def leads(self) -> Iterator[LeadState]:
        for key in self.records:
            record = self.record(key)
            if record is not None and record.state.lead_id is not None:
                yield record.state
