"""The live pipeline's three stages as plain functions; Faust only moves their bytes.

    input topics --ingest--> identity topic (keyed by anonymous id) --identity-->
    scoring topic (keyed by lead id or "anon:<id>") --score--> transitions, score updates

1. ``ingest``: decode; a bad message becomes a dead letter. Events without an
   anonymous id go straight to scoring, keyed by lead; the others go to the
   identity stage, keyed by anonymous id.
2. ``identify``: owns the anonymous-id -> lead-id links (a table partitioned
   by anonymous id). The first event carrying both ids links them and sends a
   ``release`` to the anonymous key, carrying the event; later anonymous
   events are routed to the lead.
3. ``score``: owns per-key records (a table partitioned by state key). A
   ``release`` tombstones the anonymous state and hands it to the lead as an
   ``absorb``, with the event that linked them: the lead merges the history
   and then applies that event, exactly as the offline replay does. A
   ``tick`` runs the decay sweep for one lead.

Crash safety (the outbox). A record holds the lead's state *and* the
transitions not yet known to be delivered. The worker writes the record with
its outbox, sends the transitions, waits for the broker's ack, then writes the
record again with an empty outbox. If the worker dies in between, the table
(restored from its changelog) may already contain the event while the input
offset was not committed; the event is delivered again, found to be a
duplicate, and the outbox is sent then. Consumers drop the resulting
duplicates by ``transition_id``. See docs/guarantees.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from schemas.dead_letter import DeadLetter
from schemas.events import InboundEvent
from schemas.transitions import ScoreUpdate, StageTransition
from stream_app.codec import decode
from stream_app.scoring.engine import Outcome, advance, apply_event, merge_anonymous, score_update
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import LeadState, anonymous_key, new_state


class Envelope(BaseModel):
    """A message on the internal scoring topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["event", "release", "absorb", "tick"]
    event: InboundEvent | None = None
    lead_id: str | None = None  # release: the lead the anonymous id was linked to
    anonymous: LeadState | None = None  # absorb: the anonymous history
    now: float | None = None  # tick: the sweep's clock, in epoch seconds


class Record(BaseModel):
    """What the scoring table stores per key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: LeadState
    outbox: list[StageTransition] = []


_ENVELOPE: TypeAdapter[Envelope] = TypeAdapter(Envelope)
_RECORD: TypeAdapter[Record] = TypeAdapter(Record)


def dump_envelope(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def load_envelope(raw: bytes) -> Envelope:
    return _ENVELOPE.validate_json(raw)


def dump_record(record: Record) -> bytes:
    return record.model_dump_json().encode()


def load_record(raw: bytes | None) -> Record | None:
    return None if raw is None else _RECORD.validate_json(raw)


_DUE_AT = re.compile(rb'"due_at":(null|-?[0-9][0-9.eE+-]*)[,}]')


def due_at_of(raw: bytes) -> float | None:
    """A stored record's ``state.due_at`` without decoding the record (the sweep's index
    rebuild reads every record; a full decode costs ~20 times more)."""
    found = _DUE_AT.findall(raw)
    if len(found) != 1:  # not the shape dump_record writes: take the slow, sure way
        record = load_record(raw)
        return record.state.due_at if record is not None else None
    return None if found[0] == b"null" else float(found[0])


# --- stage 1 --------------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    """Where ingest sends a decoded event: the identity stage or straight to scoring."""

    stage: Literal["identity", "scoring", "dead_letter"]
    key: str  # identity: the anonymous id; scoring: the lead id; dead letter: the topic
    kind: str  # the event type, or the dead letter's reason (for metrics)
    event: InboundEvent | None = None
    letter: DeadLetter | None = None

    def payload(self) -> bytes:
        """The bytes for the next stage's topic (only built when it is really sent)."""
        if self.letter is not None:
            return self.letter.model_dump_json().encode()
        assert self.event is not None
        if self.stage == "identity":
            return self.event.model_dump_json().encode()
        return dump_envelope(Envelope(kind="event", event=self.event))


def ingest(
    raw: bytes | None, *, topic: str, partition: int, offset: int, key: bytes | None
) -> Routed:
    decoded = decode(raw, topic=topic, partition=partition, offset=offset, key=key)
    if isinstance(decoded, DeadLetter):
        return Routed("dead_letter", topic, decoded.reason, letter=decoded)
    if decoded.anonymous_id is None:
        assert decoded.lead_id is not None
        return Routed("scoring", decoded.lead_id, decoded.type, event=decoded)
    return Routed("identity", decoded.anonymous_id, decoded.type, event=decoded)


# --- stage 2 --------------------------------------------------------------------


def identify(event: InboundEvent, linked_lead: str | None) -> tuple[str | None, str, Envelope]:
    """Route an event that carries an anonymous id.

    Returns (new link to store or None, scoring key, envelope), mirroring
    ``Replay.route``: the first link of an anonymous id wins.
    """
    anon = event.anonymous_id
    assert anon is not None
    lead = event.lead_id
    if lead is not None and linked_lead is None:
        release = Envelope(kind="release", lead_id=lead, event=event)
        return lead, anonymous_key(anon), release
    if lead is not None:
        return None, lead, Envelope(kind="event", event=event)
    return None, linked_lead or anonymous_key(anon), Envelope(kind="event", event=event)


# --- stage 3 --------------------------------------------------------------------


@dataclass
class Effects:
    """What handling one scoring message asks the wiring to do, in this order."""

    record: Record | None = None  # write this record (None: leave the table alone)
    resend: list[StageTransition] = field(default_factory=list)  # outbox left by a crash
    transitions: list[StageTransition] = field(default_factory=list)
    update: ScoreUpdate | None = None
    forward: list[tuple[str, Envelope]] = field(default_factory=list)  # to the scoring topic
    status: str = "counted"


def _with_outcome(
    effects: Effects,
    outcome: Outcome,
    rules: Rules,
    now: float | None = None,
    event_id: str | None = None,
) -> Effects:
    state = outcome.state
    effects.transitions = list(outcome.transitions)
    effects.status = outcome.status
    effects.record = Record(state=state, outbox=effects.transitions)
    if state.lead_id is not None:
        # Also for a duplicate: a redelivery after a crash repairs a lost projection update.
        # scored at the sweep's "now" for a tick, so a demoted lead shows its decayed score
        view = outcome.view if now is None else None
        effects.update = score_update(state, rules, now=now, view=view, event_id=event_id)
    return effects


def score(key: str, message: Envelope, record: Record | None, rules: Rules) -> Effects:
    """Handle one scoring-topic message for ``key`` given the stored record."""
    effects = Effects(resend=list(record.outbox) if record else [])
    state = record.state if record else None

    if state is not None and state.merged_into is not None and message.kind != "tick":
        # A merged anonymous key: anything still addressed to it belongs to the lead.
        forwarded = message if message.kind != "release" else Envelope(
            kind="event", event=message.event
        )  # fmt: skip
        effects.forward.append((state.merged_into, forwarded))
        effects.record = Record(state=state) if effects.resend else None
        return effects

    if message.kind == "release":
        assert message.lead_id is not None and message.event is not None
        anon = state if state is not None else new_state(key, None)
        tombstone = new_state(key, None)
        tombstone.merged_into = message.lead_id
        effects.record = Record(state=tombstone)
        absorb = Envelope(kind="absorb", event=message.event, anonymous=anon)
        effects.forward.append((message.lead_id, absorb))
        return effects

    if message.kind == "absorb":
        assert message.event is not None and message.anonymous is not None
        lead = state if state is not None else new_state(key, key)
        lead, _ = merge_anonymous(lead, message.anonymous, rules)
        outcome = apply_event(lead, message.event, rules, key=key)
        return _with_outcome(effects, outcome, rules, event_id=message.event.event_id)

    if message.kind == "tick":
        if state is None or state.lead_id is None or message.now is None:
            return effects
        outcome = advance(state, rules, message.now)
        if not outcome.transitions and not effects.resend:
            return effects
        return _with_outcome(effects, outcome, rules, now=message.now)

    assert message.event is not None
    outcome = apply_event(state, message.event, rules, key=key)
    return _with_outcome(effects, outcome, rules, event_id=message.event.event_id)


# --- an in-memory run of the three stages (tests, and the offline comparison) ------


@dataclass
class InMemoryPipeline:
    """The three stages over dicts, in delivery order: the live logic without Kafka."""

    rules: Rules
    links: dict[str, str] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    transitions: list[StageTransition] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    on_effects: Callable[[str, Effects], None] | None = None

    def feed(self, raw: bytes, topic: str = "page_views", offset: int = 0) -> None:
        routed = ingest(raw, topic=topic, partition=0, offset=offset, key=None)
        if routed.stage == "dead_letter":
            self.dead_letters.append(DeadLetter.model_validate_json(routed.payload()))
            return
        if routed.stage == "scoring":
            self._score(routed.key, load_envelope(routed.payload()))
            return
        event = event_from_json(routed.payload())
        link, key, envelope = identify(event, self.links.get(routed.key))
        if link is not None:
            self.links[routed.key] = link
        self._score(key, envelope)

    def tick(self, now: float) -> None:
        for key in list(self.records):
            self._score(key, Envelope(kind="tick", now=now))

    def _score(self, key: str, envelope: Envelope) -> None:
        # Envelopes and records go through bytes, as they do through Kafka and RocksDB.
        pending: list[tuple[str, bytes]] = [(key, dump_envelope(envelope))]
        while pending:
            k, payload = pending.pop(0)
            stored = self.records.get(k)
            record = load_record(dump_record(stored)) if stored is not None else None
            effects = score(k, load_envelope(payload), record, self.rules)
            if self.on_effects is not None:
                self.on_effects(k, effects)
            if effects.record is not None:
                self.records[k] = Record(state=effects.record.state)  # outbox delivered
            self.transitions += effects.resend + effects.transitions
            pending += [(target, dump_envelope(e)) for target, e in effects.forward]

    def leads(self) -> Iterator[LeadState]:
        return (r.state for r in self.records.values() if r.state.lead_id is not None)


def event_from_json(payload: bytes) -> InboundEvent:
    """An event that ingest already validated (the identity topic's payload)."""
    decoded = decode(payload)
    assert not isinstance(decoded, DeadLetter), decoded.error
    return decoded
