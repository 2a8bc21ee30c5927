"""Every topic's bytes: inbound events, internal messages, stored records, outputs.

Inbound bytes become an event, or a dead letter that says why not. Errors are
values here: ``decode`` never raises for bad input. The worker routes dead
letters to their topic; ``simulate`` reports them by line number. Internal
messages and records are written by the worker itself and read back as trusted.

    >>> decode(b'{"type": "page_view"}', topic="page_views").reason
    'invalid'
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgpack
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.base import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.events import INPUT_ADAPTER, Erase, InboundEvent, InputEvent
from stream_app.ingest.segment import (
    Ignored,
    Rejected,
    email_subject,
    from_segment,
    looks_like_segment,
)
from stream_app.ingest.tracks import Tracks, shipped_tracks
from stream_app.messages import INTERNAL_ADAPTER, RECORD_ADAPTER, EraseTrail, Internal, Record
from stream_app.scoring.state import DAY, LeadState

#: Largest message value accepted (bytes). Events are small; a 10 MB value is a bug.
MAX_MESSAGE_BYTES = 256 * 1024
#: How much of a rejected value the dead letter keeps.
MAX_DEAD_LETTER_RAW = 64 * 1024


def _describe(exc: ValidationError) -> tuple[DeadLetterReason, str]:
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        reason: DeadLetterReason = "too_deep" if "recursion limit" in first["msg"] else "not_json"
        return reason, first["msg"]
    if kind == "union_tag_invalid":
        return "unknown_type", first["msg"]
    if kind == "union_tag_not_found":
        return "invalid", "no 'type' field: every event needs one (e.g. \"page_view\")"
    parts = []
    why: DeadLetterReason = "invalid"
    if any(err["type"] == "invalid_id" for err in errors):
        why = "invalid_id"  # the message could never be looked up by that id
    for err in errors[:5]:
        # loc starts with the union tag ("page_view", "occurred_at"): keep the field path
        loc = ".".join(str(p) for p in err["loc"][1:]) or "(event)"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return why, "; ".join(parts) + more


#: JSON keys whose values are a person's, compared lower-cased without ``_``, ``-``, ``.``:
#: native and Segment-spec fields (``traits.firstName``, ``context.ip``, ``traits.address``
#: and everything under it). A dead letter's raw bytes carry them replaced.
PERSONAL_KEYS = frozenset(
    {
        "email",
        "emailaddress",
        "phone",
        "phonenumber",
        "mobile",
        "mobilephone",
        "fax",
        "name",
        "firstname",
        "lastname",
        "fullname",
        "username",
        "address",
        "street",
        "streetaddress",
        "ip",
        "birthday",
        "dateofbirth",
        "gender",
        "avatar",
    }
)
REDACTED = "[redacted]"
#: An e-mail address in bytes; bounded repeats, so a scan stays linear in the length.
_EMAIL = re.compile(
    rb"[^\s@\"'<>,;:()\[\]{}\\]{1,64}@((?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24})"
)
_KEY_PARTS = str.maketrans("", "", "_-.")


def _redact_tree(node: Any) -> int:
    """Replace personal values in a parsed JSON document in place; how many were."""
    count = 0
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for name, value in list(items):
        personal = isinstance(name, str) and name.lower().translate(_KEY_PARTS) in PERSONAL_KEYS
        if personal and value not in (None, ""):
            domain = value.rpartition("@")[2] if isinstance(value, str) and "@" in value else ""
            node[name] = f"{REDACTED}@{domain}" if domain else REDACTED
            count += 1
        elif isinstance(value, dict | list):
            count += _redact_tree(value)
    return count


def redact(raw: bytes) -> tuple[bytes, int]:
    """``raw`` without a person's data that can be recognised, and how many values went.

    A JSON document (up to ``MAX_MESSAGE_BYTES``) loses the values of
    ``PERSONAL_KEYS`` at any depth (an address keeps its domain, which is what
    scoring uses), and is re-serialised only then; any bytes then lose every
    e-mail address (its domain kept). Not recognised: a name or a phone number in
    free text or in bytes that are not JSON; those stay as long as the dead-letter
    topic keeps the letter (``LEADSTREAM_DEAD_LETTER_RETENTION_DAYS``).
    """
    count = 0
    if len(raw) <= MAX_MESSAGE_BYTES and raw[:1] in (b"{", b"["):
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict | list):
            count = _redact_tree(data)
            if count:
                raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    if b"@" not in raw:
        return raw, count
    raw, found = _EMAIL.subn(lambda m: REDACTED.encode() + b"@" + m.group(1), raw)
    return raw, count + found


def _redact_text(text: str) -> str:
    return redact(text.encode("utf-8", "surrogatepass"))[0].decode("utf-8", "replace")


def dead_letter(
    raw: bytes,
    reason: DeadLetterReason,
    error: str,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    key: bytes | None = None,
    line: int | None = None,
) -> DeadLetter:
    """A dead letter of ``raw``: its personal values redacted (``redact``), then cut to
    ``MAX_DEAD_LETTER_RAW``. An erasure does not reach dead letters (nothing in one is
    looked up by person), so this is what keeps an erased person's address out of them."""
    # what is kept, and an address the cut would split (a longer value is not JSON anyway)
    kept, redacted = redact(
        raw if len(raw) <= MAX_MESSAGE_BYTES else raw[: MAX_DEAD_LETTER_RAW + 400]
    )
    return DeadLetter(
        reason=reason,
        error=_redact_text(error[:4000]),
        raw=kept[:MAX_DEAD_LETTER_RAW],
        raw_size=len(raw),
        redacted=redacted,
        topic=topic,
        partition=partition,
        offset=offset,
        key=_redact_text(key.decode("utf-8", "replace")[:1000]) if key is not None else None,
        line=line,
    )


def decode(
    raw: bytes | None,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    key: bytes | None = None,
    line: int | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
    tracks: Tracks | None = None,
    arrived_at: float | None = None,
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
) -> InputEvent | Ignored | DeadLetter:
    """Validate one message value; a dead letter (never an exception) if it is bad.

    A Segment-spec message (``type`` page, track, identify...) is mapped to its
    native event by ``stream_app.ingest.segment`` with ``tracks`` (default: the shipped
    mapping), or ``Ignored`` when no rule could use it. An erase request that
    names an e-mail address comes out naming its pseudonymous anonymous id
    instead (``segment.email_subject``, the id its e-mail events are scored
    under): past this point the address is neither kept nor forwarded.

    An event dated later than its message arrived, by more than ``max_clock_skew``
    seconds, is a dead letter (``future_event``, ``ahead_of_arrival``): ``arrived_at`` is
    the message's Kafka timestamp (seconds; None offline), and the event's own
    ``received_at`` (Segment's ``receivedAt``) counts too.
    """

    def reject(value: bytes, reason: DeadLetterReason, error: str) -> DeadLetter:
        return dead_letter(
            value,
            reason,
            error,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            line=line,
        )

    if raw is None:
        return reject(b"", "invalid", "empty message (null value)")
    if len(raw) > max_bytes:
        return reject(raw, "too_large", f"{len(raw)} bytes is over the {max_bytes}-byte limit")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return reject(raw, "not_utf8", f"not UTF-8: {exc}")
    try:
        event = INPUT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        reason, error = _describe(exc)
    else:
        if isinstance(event, Erase):
            if event.email is not None:
                return event.model_copy(
                    update={"email": None, "anonymous_id": email_subject(event.email)}
                )
            return event
        ahead = ahead_of_arrival(event, arrived_at, max_clock_skew)
        return event if ahead is None else reject(raw, "future_event", ahead)
    if looks_like_segment(raw, reason):
        mapped = from_segment(raw, tracks or shipped_tracks())
        if isinstance(mapped, Rejected):
            return reject(raw, mapped.reason, mapped.error)
        if isinstance(mapped, Ignored):
            return mapped
        ahead = ahead_of_arrival(mapped, arrived_at, max_clock_skew)
        return mapped if ahead is None else reject(raw, "future_event", ahead)
    return reject(raw, reason, error)


def ahead_of_arrival(
    event: InboundEvent, arrived_at: float | None, max_clock_skew: float
) -> str | None:
    """Why ``event`` is dated too far after its message reached us, or None if it is not.

    The message reached us at the earliest time known for it: its Kafka timestamp
    (``arrived_at``, None offline, ignored unless positive: -1 means "none") and the
    event's own ``received_at``. An event time later than that by more than
    ``max_clock_skew`` seconds is a clock bug or a lie, and accepting it would do lasting
    harm: the lead's newest event time would jump ahead, and every real event of the lead
    older than that by more than the rules' horizon would be "late", not counted
    (docs/guarantees.md, "One event cannot silence a lead"). With neither time known
    (``simulate`` on a line without ``received_at``) there is no bound.

        >>> from schemas.events import parse_event
        >>> event = parse_event({"type": "page_view", "event_id": "e", "lead_id": "L",
        ...                      "occurred_at": "2099-06-01T00:00:00Z", "path": "/"})
        >>> ahead_of_arrival(event, arrived_at=1_796_083_200.0, max_clock_skew=300.0)[:79]
        'event time 2099-06-01T00:00:00+00:00 is 26480 days after the message reached us'
    """
    known = [] if arrived_at is None or arrived_at <= 0 else [arrived_at]
    if event.received_at is not None:
        known.append(event.received_at.timestamp())
    if not known:
        return None
    arrival = min(known)
    ahead = event.occurred_at.timestamp() - arrival
    if ahead <= max_clock_skew:
        return None
    by = f"{ahead / DAY:.0f} days" if ahead >= 2 * DAY else f"{ahead:.0f} s"
    return (
        f"event time {event.occurred_at.isoformat()} is {by} after the message reached us "
        f"({datetime.fromtimestamp(arrival, UTC).isoformat()}); at most {max_clock_skew:g} s "
        "of clock skew is allowed (LEADSTREAM_MAX_CLOCK_SKEW_SECONDS)"
    )


# --- internal messages and stored records: trusted bytes, written by the worker only ----


def encode_internal(message: Internal) -> bytes:
    return message.model_dump_json().encode()


def decode_internal(raw: bytes) -> Internal:
    """A repartition-topic message. The worker wrote it; a bad one is a bug, so it raises."""
    return INTERNAL_ADAPTER.validate_json(raw)


#: The stored record's layout, version 2 (version 1, the pydantic JSON object, is still
#: read): a MessagePack array ``[2, due_at, [state values in STATE_FIELDS order],
#: awaiting, held, linked]``, and ``told_by`` seventh on an address's pseudonym that
#: has any (so every other record keeps its six, byte for byte). Positional, so no field
#: name is stored per record, and binary, so an event time takes 9 bytes instead of 18
#: characters: 0.55 of version 1's bytes for the bench's 9,825 final lead records (2,194
#: -> 1,200 bytes on average), 0.44 on a mixed table of leads and visitors. ``due_at``
#: comes second, so the due index reads it without decoding the record. A field added to
#: ``LeadState`` is appended here (tests/unit/test_codec.py checks the two agree): a
#: record written before it has fewer values, and the decoder fills in the field's default.
STATE_FIELDS: tuple[str, ...] = (
    "key",
    "lead_id",
    "stage",
    "stage_since",
    "version",
    "transition_seq",
    "profile",
    "profile_at",
    "buckets",
    "archived",
    "archive_ref",
    "signal_log",
    "product_actions",
    "features",
    "seen",
    "seen_floor",
    "newest_at",
    "first_touch_at",
    "mql_at",
    "sql_at",
    "hand_raised_at",
    "recycled_at",
    "source",
    "campaign",
    "merged_anonymous",
    "merged_into",
    "scored_with",
    "fit_points",
    "excluded_by",
    "due_at",
    "hand_raise_form",
    "cap_carry",
    "feedback_at",
    "sla_breached",
    "product_used_at",
)
_SIGNAL_LOG = STATE_FIELDS.index("signal_log")
_DEFAULTS: list[Callable[[], Any]] = [
    field.default_factory
    if field.default_factory is not dataclasses.MISSING
    else functools.partial(lambda value: value, field.default)
    for field in dataclasses.fields(LeadState)
]
_ARRAY_OF_6, _ARRAY_OF_7, _VERSION, _NIL, _FLOAT64 = 0x96, 0x97, 0x02, 0xC0, 0xCB
#: A held item: an input event, or an erase by address waiting at the lead (``EraseTrail``).
_HELD_ADAPTER: TypeAdapter[InputEvent | EraseTrail] = TypeAdapter(InputEvent | EraseTrail)
_pack = msgpack.Packer(use_bin_type=True).pack


def encode_record(record: Record) -> bytes:
    """A stored record in layout version 2 (above)."""
    state = record.state
    values = [getattr(state, name) for name in STATE_FIELDS]
    values[_SIGNAL_LOG] = {
        signal: [x for entry in log for x in entry] for signal, log in state.signal_log.items()
    }
    held = [event.model_dump_json().encode() for event in record.held]
    layout = [2, state.due_at, values, record.awaiting, held, record.linked]
    if record.told_by:
        layout.append(record.told_by)
    return _pack(layout)


def decode_record(raw: bytes | None) -> Record | None:
    """A stored record, either layout. Trusted: the worker wrote it."""
    if raw is None:
        return None
    if raw[:1] == b"{":  # layout version 1, written before the compact one
        return RECORD_ADAPTER.validate_json(raw)
    version, _due_at, values, awaiting, held, linked, *told_by = msgpack.unpackb(
        raw,
        strict_map_key=False,  # the buckets' keys are day numbers
    )
    if version != 2:
        raise ValueError(f"stored record of unknown layout version {version!r}")
    signal_log = values[_SIGNAL_LOG]
    for signal, flat in signal_log.items():
        signal_log[signal] = list(zip(flat[::2], flat[1::2], strict=True))
    if len(values) < len(_DEFAULTS):  # written before a field was appended
        values.extend(default() for default in _DEFAULTS[len(values) :])
    return Record.model_construct(
        state=LeadState(*values),
        awaiting=awaiting,
        held=[_HELD_ADAPTER.validate_json(event) for event in held],
        linked=linked,
        told_by=told_by[0] if told_by else [],
    )


_DUE_AT = re.compile(rb'"due_at":(null|-?[0-9][0-9.eE+-]*)[,}]')


def due_at_of(raw: bytes) -> float | None:
    """A stored record's ``state.due_at`` without decoding the record (the sweep's index
    rebuild reads every record)."""
    if raw[0] in (_ARRAY_OF_6, _ARRAY_OF_7) and raw[1] == _VERSION:
        if raw[2] == _NIL:
            return None
        if raw[2] == _FLOAT64:
            return float(struct.unpack_from(">d", raw, 3)[0])
    elif raw[:1] == b"{":  # layout version 1
        found = _DUE_AT.findall(raw)
        if len(found) == 1:
            return None if found[0] == b"null" else float(found[0])
    record = decode_record(raw)  # not a shape seen above: the slow, sure way
    return record.state.due_at if record is not None else None


def encode_output(model: BaseModel) -> bytes:
    """Transitions, score updates, erasures and dead letters: their JSON, as their schemas
    say."""
    return model.model_dump_json().encode()
