"""The worker's internal messages and stored records, typed like the external ones.

One internal topic, the repartition topic, carries eight kinds of message
between the worker's partitions. Each is keyed by the *subject* it is for
(a lead id, or an anonymous id), so Kafka's partitioner puts it on the
partition where that subject's record lives:

- ``event``: an inbound event (validated once, at the boundary) for the
  record ``to``: an event that arrived on another partition, or an event for
  an anonymous id that was merged into a lead;
- ``claim``: lead ``lead_id`` asks anonymous visitor ``anonymous_id`` to join
  it (the first event carrying both ids);
- ``absorb``: the answer: the visitor's history (``state``) when the claim won,
  or nothing when the visitor had already joined ``taken_by``;
- ``tick``: the decay sweep's clock for the record ``to``;
- ``switch``: the rules were reloaded at ``at``: re-evaluate the record ``to``
  against the rules in force (``engine.switch_rules``);
- ``erase``: lead ``lead_id`` was erased: the anonymous record ``to`` goes
  too if it joined that lead (a visitor the lead only asked for, which had
  joined another lead, is someone else's and stays);
- ``told``: anonymous visitor ``anonymous_id``, which joined no lead, told an
  e-mail address: the address's pseudonym's record ``to`` keeps a pointer to
  it (``Record.told_by``), so an erase by the address reaches the visitor;
- ``trail``: an erase by address follows those pointers, one record after
  the other (``to``, then ``rest``), erasing each visitor, or the lead it has
  joined since, and gathering what it erased; the last one publishes the
  request's one erasure.

A ``Record`` is what the records table stores per key: the scoring state plus
the identity bookkeeping that used to need a table and a stage of its own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.events import Erase, InputEvent
from stream_app.scoring.identity import MAX_TOLD_BY
from stream_app.scoring.state import LeadState, new_state

#: How many answered anonymous ids a lead record remembers (so a later event
#: carrying both ids costs no claim); merged ids are also in the state.
MAX_LINKED = 100


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventMessage(_Message):
    kind: Literal["event"] = "event"
    to: str  # the record key: a lead id or "anon:<anonymous id>"
    event: InputEvent  # a scored event, or an erase request


class Claim(_Message):
    kind: Literal["claim"] = "claim"
    anonymous_id: str
    lead_id: str


class Absorb(_Message):
    kind: Literal["absorb"] = "absorb"
    lead_id: str
    anonymous_id: str
    state: LeadState | None = None  # the visitor's history: the claim won
    taken_by: str | None = None  # the lead the visitor had already joined


class Tick(_Message):
    kind: Literal["tick"] = "tick"
    to: str
    now: float  # the sweep's clock, epoch seconds


class RulesSwitch(_Message):
    kind: Literal["switch"] = "switch"
    to: str
    at: float  # the reload's clock time, epoch seconds: the switch's event time


class EraseVisitor(_Message):
    kind: Literal["erase"] = "erase"
    to: str  # "anon:<anonymous id>"
    lead_id: str  # the lead erased: the visitor's record goes only if it joined this lead


class Told(_Message):
    kind: Literal["told"] = "told"
    to: str  # "anon:<pseudonym>": the record of the address told (never the address)
    anonymous_id: str  # the visitor that told it, joined to no lead when it did


class EraseTrail(_Message):
    """An erase by address on its way through the visitors that told the address."""

    kind: Literal["trail"] = "trail"
    to: str  # the record to erase now: a lead id or "anon:<visitor id>"
    request: Erase  # the erase request (it names the address by its pseudonym only)
    rest: list[str] = []  # the records to erase after ``to``, in order
    lead_ids: list[str] = []  # what it erased so far: leads,
    anonymous_ids: list[str] = []  # their merged visitors and the visitors found,
    found: bool = False  # and whether any record held anything


Internal = Annotated[
    EventMessage | Claim | Absorb | Tick | RulesSwitch | EraseVisitor | Told | EraseTrail,
    Field(discriminator="kind"),
]
INTERNAL_ADAPTER: TypeAdapter[Internal] = TypeAdapter(Internal)


class Record(BaseModel):
    """What the records table stores per key.

    ``awaiting``/``held``: a lead that claimed an anonymous visitor holds its
    events, in arrival order, until every answer is in, so the merge happens
    before the event that caused it, as in the offline replay.
    An erase by address that reaches the lead then (``EraseTrail``) waits there too.
    ``linked``: anonymous ids whose claim was answered (joined or refused).
    ``told_by``: on an address's pseudonym, the visitors that told the address
    while they had joined no lead, oldest first; a pseudonym nobody sent events
    as keeps a record of these pointers only (``history`` is None).
    """

    model_config = ConfigDict(extra="forbid")

    state: LeadState
    awaiting: list[str] = []
    held: list[InputEvent | EraseTrail] = []
    linked: list[str] = []
    told_by: list[str] = []

    def knows(self, anonymous_id: str) -> bool:
        return anonymous_id in self.linked or anonymous_id in self.state.merged_anonymous

    def link(self, anonymous_id: str) -> None:
        if anonymous_id not in self.linked:
            self.linked = [*self.linked, anonymous_id][-MAX_LINKED:]

    def tell(self, anonymous_id: str) -> bool:
        """Remember that ``anonymous_id`` told this address; False if it was known."""
        if anonymous_id in self.told_by:
            return False
        self.told_by = [*self.told_by, anonymous_id][-MAX_TOLD_BY:]
        return True

    @property
    def history(self) -> LeadState | None:
        """An anonymous record's state, None if it holds only ``told_by`` pointers (every
        event applied counts its state's version up; a tombstone names its lead)."""
        state = self.state
        return state if state.version or state.merged_into is not None else None

    def copy_for_change(self) -> Record:
        """A copy whose lists can change without touching the cached original."""
        return Record.model_construct(  # already valid: no validation on the hot path
            state=self.state,
            awaiting=list(self.awaiting),
            held=list(self.held),
            linked=list(self.linked),
            told_by=list(self.told_by),
        )

    @staticmethod
    def of(state: LeadState, told_by: list[str] | None = None) -> Record:
        """A record holding only ``state`` (already valid: not validated again)."""
        return Record.model_construct(
            state=state, awaiting=[], held=[], linked=[], told_by=told_by or []
        )

    @staticmethod
    def pointers(key: str, told_by: list[str]) -> Record | None:
        """What stays of a pseudonym's record whose history goes: its ``told_by`` pointers
        (they are the visitors', not the erased person's), or nothing."""
        return Record.of(new_state(key, None), told_by) if told_by else None


RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)
