"""A batch of records -> the newest change per lead, and the guard against older writes (pure).

crm-sync reads two topics: ``lead_score_updates`` (the lead's newest scores and
stage; a tombstone, a null value, when the lead was erased) and
``lead_stage_transitions`` (why the stage moved). Only the newest of each per
lead in a batch is written (``coalesce``): a burst of 40 updates of one lead is
one write.

**Never an older state over a newer one.** A record read again (after a crash,
a kill -9, a rebalance) may be older than what was written before: a restart
reads from the last committed offset, and its first fetch may stop short of
the record that was written. So crm-sync keeps, per lead, the position of the
newest record it wrote (``Written``, in Redis, claimed *before* the CRM call,
shared by every crm-sync of the group) and admits a record only at or after it
(``admit``): the same record again is written again (its first write may not
have landed), an older one never. Positions are Kafka offsets, which grow per
lead on its partition (a lead's records are keyed by its id), even across an
erasure that starts its ``version`` again at 1. A transition comes on another
topic in no order with the tombstone: one produced at or before the erasure is
not admitted (the projection's ``ErasureFence``, made durable).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import ValidationError

from schemas.transitions import ScoreUpdate, Stage, StageTransition

log = logging.getLogger("leadstream.crm")

Topic = Literal["updates", "transitions"]


@dataclass(frozen=True)
class Record:
    """One Kafka record as crm-sync sees it (what aiokafka gives, less the rest)."""

    topic: Topic
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp: int  # ms


@dataclass(frozen=True)
class Change:
    """What one batch says about one lead: its newest update (or its erasure) and its newest
    transition, each with the record's offset."""

    lead_id: str
    update: ScoreUpdate | None = None
    update_offset: int | None = None
    erased: bool = False  # the newest record on lead_score_updates is a tombstone
    erased_at: int | None = None  # the tombstone's timestamp (ms)
    transition: StageTransition | None = None
    transition_offset: int | None = None
    transition_at: int | None = None  # the transition record's timestamp (ms)
    first_from: Stage | None = None  # the stage the batch's first transition left

    @property
    def empty(self) -> bool:
        return self.update is None and not self.erased and self.transition is None


@dataclass(frozen=True)
class Undecodable:
    """A record crm-sync cannot read: dead-lettered, never a stop for the other leads."""

    record: Record
    error: str


@dataclass
class Batch:
    changes: dict[str, Change] = field(default_factory=dict)
    undecodable: list[Undecodable] = field(default_factory=list)


def coalesce(records: Iterable[Record]) -> Batch:
    """The newest change per lead of ``records`` (each partition's in order)."""
    batch = Batch()
    for record in records:
        try:
            _take(batch, record)
        except (ValidationError, UnicodeDecodeError, ValueError) as exc:
            error = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            batch.undecodable.append(Undecodable(record, error[:300]))
    return batch


def _take(batch: Batch, record: Record) -> None:
    if record.topic == "updates":
        if record.value is None:
            if not record.key:
                raise ValueError("a tombstone without a key")
            lead = record.key.decode()
            held = batch.changes.get(lead) or Change(lead)
            batch.changes[lead] = replace(
                held,
                update=None,
                update_offset=record.offset,
                erased=True,
                erased_at=record.timestamp,
            )
            return
        update = ScoreUpdate.model_validate_json(record.value)
        held = batch.changes.get(update.lead_id) or Change(update.lead_id)
        batch.changes[update.lead_id] = replace(
            held, update=update, update_offset=record.offset, erased=False, erased_at=None
        )
        return
    transition = StageTransition.model_validate_json(record.value or b"")
    held = batch.changes.get(transition.lead_id) or Change(transition.lead_id)
    if held.erased and held.erased_at is not None and record.timestamp <= held.erased_at:
        return  # produced before the erasure this batch already holds
    batch.changes[transition.lead_id] = replace(
        held,
        transition=transition,
        transition_offset=record.offset,
        transition_at=record.timestamp,
        first_from=held.first_from if held.transition is not None else transition.from_stage,
    )


@dataclass(frozen=True)
class Written:
    """What crm-sync wrote of a lead last: the offsets of its newest update (or tombstone)
    and transition, and the erasure's timestamp (ms) if the lead was erased."""

    update_offset: int = -1
    transition_offset: int = -1
    erased_at: int | None = None

    def encode(self) -> str:
        erased = "" if self.erased_at is None else str(self.erased_at)
        return f"{self.update_offset} {self.transition_offset} {erased}".rstrip()

    @classmethod
    def decode(cls, text: str | bytes | None) -> Written:
        if text is None:
            return cls()
        parts = (text.decode() if isinstance(text, bytes) else text).split()
        erased = int(parts[2]) if len(parts) > 2 else None
        return cls(int(parts[0]), int(parts[1]), erased)


def admit(change: Change, written: Written) -> Change:
    """``change`` less what is older than what was written (module docstring); may be empty."""
    out = change
    if change.update_offset is not None and change.update_offset < written.update_offset:
        out = replace(out, update=None, update_offset=None, erased=False, erased_at=None)
    stale_transition = change.transition_offset is not None and (
        change.transition_offset < written.transition_offset
        or (
            written.erased_at is not None
            and change.transition_at is not None
            and change.transition_at <= written.erased_at
            and not out.erased  # the erasure in this batch fenced it in coalesce already
        )
    )
    if stale_transition:
        out = replace(
            out, transition=None, transition_offset=None, transition_at=None, first_from=None
        )
    return out


def claim(change: Change, written: Written) -> Written:
    """What is written once ``change`` (admitted) is."""
    erased_at = written.erased_at
    if change.erased:
        erased_at = change.erased_at
    elif change.update is not None:
        erased_at = written.erased_at  # a lead back after its erasure keeps the fence
    return Written(
        max(written.update_offset, change.update_offset or -1),
        max(written.transition_offset, change.transition_offset or -1),
        erased_at,
    )
