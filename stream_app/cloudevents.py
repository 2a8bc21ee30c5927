"""CloudEvents binary-mode headers for every output record (the Kafka protocol binding).

The value stays the message's JSON, exactly as its schema says; the headers
let a platform consumer (Knative, an event router, a CloudEvents SDK) route
and deduplicate without parsing it:

- ``ce_id``: a transition's ``transition_id``; an SLA breach's ``breach_id``; a score
  update's digest of its value's bytes; an erasure's ``erasure_id``; a dead letter's
  source ``topic:partition:offset`` (else a digest of its bytes); a tombstone's
  digest of the lead and the erasure that made it. The same record re-published
  after a crash has the same id, and two different records never share one.

  A score update is not identified by ``<lead id>:<version>`` (what it was until
  issue 25): a version is not unique. A late or repeated event is answered with
  the lead's unchanged version and its own ``event_id``, and a lead erased and
  seen again restarts at version 1: both gave a second, different update the id
  of an earlier one, which a consumer deduplicating by source and id (the
  CloudEvents contract) dropped. The digest of the bytes is unique per distinct
  update and stable for a redelivered one (the same state and event give the
  same bytes). What it cannot tell apart is what nothing in the record tells
  apart: a lead erased, then fed exactly the same events again, publishes
  byte-identical updates with the same ids as before its erasure (so do its
  ``transition_id`` and ``breach_id``, from the same events): a consumer that
  keeps ids per subject forgets a subject's ids at its tombstone.
- A tombstone (a null value on ``lead_score_updates``, keyed by lead id: the
  lead's projection is deleted; the older updates go with the topic's retention) is
  published when a lead is erased. It carries the headers too, with
  ``ce_type`` ``dev.leadstream.score_update_deleted.v1``, ``ce_time`` the
  erasure's ``requested_at`` and no ``ce_dataschema`` or ``content-type``: a
  CloudEvent without data. The erasure itself is the ``erasure`` on
  ``lead_erasures``.
- ``ce_type``: ``dev.leadstream.<type>.v1`` (``stage_transition``,
  ``sla_breach``, ``score_update``, ``erasure``, ``dead_letter``): one per topic, versioned
  with the schema.
- ``ce_source``: ``/leadstream/<app id>``; ``ce_subject``: the lead id (an
  erasure of a visitor: the anonymous id; a dead letter's message key);
  ``ce_time``: the event time of the change (an erasure: when it was requested) when
  there is one, else when the record was produced;
  ``ce_dataschema``: the JSON Schema file of the value; ``content-type``.

Pure: ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from schemas.dead_letter import DeadLetter
from schemas.erasures import ErasureEvent
from schemas.transitions import ScoreUpdate, SlaBreach, StageTransition

SPEC_VERSION = "1.0"
TYPE_PREFIX = "dev.leadstream."
SCHEMA_VERSION = "v1"
SCHEMA_BASE = "https://leadstream.dev/schemas/"

Output = StageTransition | SlaBreach | ScoreUpdate | ErasureEvent | DeadLetter
Headers = list[tuple[str, bytes]]
#: The ``ce_type`` name of a score update's tombstone (a record without a schema).
TOMBSTONE_TYPE = "score_update_deleted"


def event_type(type_name: str) -> str:
    """``stage_transition`` -> ``dev.leadstream.stage_transition.v1``."""
    return f"{TYPE_PREFIX}{type_name}.{SCHEMA_VERSION}"


def source_of(app_id: str) -> str:
    return f"/leadstream/{app_id}"


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def headers(record: Output, *, source: str, now: datetime, value: bytes | None = None) -> Headers:
    """The CloudEvents headers of one output record; ``value``: its bytes as sent (a score
    update's id is their digest; encoded here when not given)."""
    subject: str | None
    when: datetime
    if isinstance(record, StageTransition):
        ce_id, subject, when = record.transition_id, record.lead_id, record.occurred_at
    elif isinstance(record, SlaBreach):
        ce_id, subject, when = record.breach_id, record.lead_id, record.occurred_at
    elif isinstance(record, ErasureEvent):
        ce_id, subject = record.erasure_id, record.lead_id or record.anonymous_id
        when = record.requested_at
    elif isinstance(record, ScoreUpdate):
        ce_id = _digest(value if value is not None else record.model_dump_json().encode())
        subject, when = record.lead_id, record.last_activity_at or now
    else:
        if record.topic is not None and record.offset is not None:
            ce_id = f"{record.topic}:{record.partition}:{record.offset}"
        else:
            ce_id = _digest(record.raw)
        subject, when = record.key, now
    out = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", ce_id),
        ("ce_source", source),
        ("ce_type", event_type(record.type)),
        ("ce_time", _time(when)),
        ("ce_dataschema", f"{SCHEMA_BASE}{record.type}.json"),
        ("content-type", "application/json"),
    ]
    if subject:
        out.insert(4, ("ce_subject", subject))
    return [(name, value.encode()) for name, value in out]


def tombstone_headers(lead_id: str, erasure: ErasureEvent, *, source: str) -> Headers:
    """The headers of the tombstone ``erasure`` puts on the lead's score updates."""
    out = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", _digest(f"{TOMBSTONE_TYPE}|{lead_id}|{erasure.erasure_id}".encode())),
        ("ce_source", source),
        ("ce_type", event_type(TOMBSTONE_TYPE)),
        ("ce_subject", lead_id),
        ("ce_time", _time(erasure.requested_at)),
    ]
    return [(name, value.encode()) for name, value in out]
