"""CloudEvents binary-mode headers for every output record (the Kafka protocol binding).

The value stays the message's JSON, exactly as its schema says; the headers
let a platform consumer (Knative, an event router, a CloudEvents SDK) route
and deduplicate without parsing it:

- ``ce_id``: a transition's ``transition_id``; an SLA breach's ``breach_id``; a score update's
  ``<lead id>:<version>``; an erasure's ``erasure_id``; a dead letter's source
  ``topic:partition:offset``
  (else a digest of its bytes). The same record re-published after a crash
  has the same id.
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


def event_type(type_name: str) -> str:
    """``stage_transition`` -> ``dev.leadstream.stage_transition.v1``."""
    return f"{TYPE_PREFIX}{type_name}.{SCHEMA_VERSION}"


def source_of(app_id: str) -> str:
    return f"/leadstream/{app_id}"


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def headers(record: Output, *, source: str, now: datetime) -> Headers:
    """The CloudEvents headers of one output record."""
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
        ce_id, subject = f"{record.lead_id}:{record.version}", record.lead_id
        when = record.last_activity_at or now
    else:
        if record.topic is not None and record.offset is not None:
            ce_id = f"{record.topic}:{record.partition}:{record.offset}"
        else:
            ce_id = hashlib.sha256(record.raw).hexdigest()[:32]
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
