"""Erasure: what an ``erase`` request answers, the same live and in the offline replay.

A person is a lead and the anonymous visitors merged into it. Erasing them
forgets all of it: a later event for the same ids starts from nothing, as if
the person had never been seen. What the person's erasure says
(``ErasureEvent``) is a function of the request and of the lead's state
before the erasure, so the live worker and ``Replay`` publish the same one.

An erase by e-mail address also reaches the anonymous visitors that told the
address before they joined any lead (a form's ``email`` field, identify
traits, a profile update): the address's pseudonym keeps pointers to them,
and the erase follows each one, to the visitor, or to the lead it has joined
since. It erases every one of them and still answers once
(``erasure_by_address``), with everything it erased.
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
        lead_ids=[lead_id] if lead_id is not None else [],
        anonymous_id=request.anonymous_id,
        anonymous_ids=list(found.merged_anonymous) if found is not None else [],
        found=found is not None,
        requested_at=request.occurred_at,
        reason=request.reason,
        requested_by=request.requested_by,
    )


def erasure_by_address(
    request: Erase, *, lead_ids: list[str], anonymous_ids: list[str], found: bool
) -> ErasureEvent:
    """The answer to an erase by address that followed the visitors who told the address:
    the leads it erased (in the order reached), their merged visitors and the unmerged
    visitors it erased (each once, in that order), and whether anything was held."""
    return ErasureEvent(
        erasure_id=request.event_id,
        lead_id=lead_ids[0] if lead_ids else None,
        lead_ids=lead_ids,
        anonymous_id=request.anonymous_id,
        anonymous_ids=list(dict.fromkeys(anonymous_ids)),
        found=found,
        requested_at=request.occurred_at,
        reason=request.reason,
        requested_by=request.requested_by,
    )
