"""The answer to an ``erase`` request, published on ``lead_erasures`` (keyed by the lead id,
else the anonymous id erased).

Downstream consumers follow it: a CRM sync, a warehouse, a sales bot's
journal delete what they hold of ``lead_id`` and ``anonymous_ids``. The worker
has already deleted its records (the records table and its changelog), and
the projection deletes the lead's Redis keys when it reads the tombstone the
worker wrote on ``lead_score_updates`` beside this event. Transitions already
published on ``lead_stage_transitions`` stay there (docs/guarantees.md).

``erasure_id`` is the request's ``event_id``: the same request, redelivered
after a crash, publishes an erasure with the same id (then with
``found = false``: the records were already gone), so a consumer drops it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import EventTime, Id, Label, Model


class ErasureEvent(Model):
    type: Literal["erasure"] = "erasure"
    erasure_id: Id = Field(description="the erase request's event_id")
    lead_id: Id | None = Field(
        None, description="the lead erased; none when the request named an unmerged visitor"
    )
    lead_ids: list[Id] = Field(
        default_factory=list,
        description="every lead erased, lead_id first: an erase by e-mail address also erases "
        "the lead each visitor that told the address has joined since, which may be another",
    )
    anonymous_id: Id | None = Field(
        None,
        description="the anonymous id the request named (an e-mail address: its pseudonymous "
        "id email:<32 hex>), if it named one",
    )
    anonymous_ids: list[Id] = Field(
        default_factory=list,
        description="the anonymous visitors whose history had been merged into the leads "
        "erased, and (an erase by e-mail address) the visitors that told the address and "
        "joined no lead: their records are erased too",
    )
    found: bool = Field(description="false when Leadstream held nothing of that person")
    requested_at: EventTime = Field(description="the request's occurred_at")
    reason: Label | None = None
    requested_by: Label | None = None
