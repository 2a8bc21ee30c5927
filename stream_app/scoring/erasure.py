"""Erasure: what an ``erase`` request answers, the same live and in the offline replay.

A person is a lead and the anonymous visitors merged into it. Erasing them
forgets all of it: a later event for the same ids starts from nothing, as if
the person had never been seen. What the person's erasure says
(``ErasureEvent``) is a function of the request and of the lead's state
before the erasure, so the live worker and ``Replay`` publish the same one.
"""

from __future__ import annotations

from schemas.erasures import ErasureEvent
from schemas.events import Erase
from stream_app.scoring.state import LeadState


def erasure_of(request: Erase, *, lead_id: str | None, found: LeadState | None) -> ErasureEvent:
    """The answer to ``request`` that erased ``lead_id`` (None: an unmerged visitor) whose
    state was ``found`` (None: nothing was held)."""
    return ErasureEvent(
        erasure_id=request.event_id,
        lead_id=lead_id,
        anonymous_id=request.anonymous_id,
        anonymous_ids=list(found.merged_anonymous) if found is not None else [],
        found=found is not None,
        requested_at=request.occurred_at,
        reason=request.reason,
        requested_by=request.requested_by,
    )
