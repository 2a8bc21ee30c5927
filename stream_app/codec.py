"""Every topic's bytes: inbound events, internal messages, stored records, outputs.

Inbound bytes become an event, or a dead letter that says why not. Errors are
values here: ``decode`` never raises for bad input. The worker routes dead
letters to their topic; ``simulate`` reports them by line number. Internal
messages and records are written by the worker itself and read back as trusted.

    >>> decode(b'{"type": "page_view"}', topic="page_views").reason
    'invalid'
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ValidationError

from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.events import EVENT_ADAPTER, InboundEvent
from stream_app.messages import INTERNAL_ADAPTER, RECORD_ADAPTER, Internal, Record

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
    for err in errors[:5]:
        # loc starts with the union tag ("page_view", "occurred_at"): keep the field path
        loc = ".".join(str(p) for p in err["loc"][1:]) or "(event)"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid", "; ".join(parts) + more


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
    return DeadLetter(
        reason=reason,
        error=error[:4000],
        raw=raw[:MAX_DEAD_LETTER_RAW],
        raw_size=len(raw),
        topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "replace")[:1000] if key is not None else None,
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
) -> InboundEvent | DeadLetter:
    """Validate one message value; a dead letter (never an exception) if it is bad."""

    def reject(value: bytes, reason: DeadLetterReason, error: str) -> DeadLetter:
        return dead_letter(
            value, reason, error, topic=topic, partition=partition, offset=offset, key=key,
            line=line,
        )  # fmt: skip

    if raw is None:
        return reject(b"", "invalid", "empty message (null value)")
    if len(raw) > max_bytes:
        return reject(raw, "too_large", f"{len(raw)} bytes is over the {max_bytes}-byte limit")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return reject(raw, "not_utf8", f"not UTF-8: {exc}")
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return reject(raw, *_describe(exc))


# --- internal messages and stored records: trusted bytes, written by the worker only ----


def encode_internal(message: Internal) -> bytes:
    return message.model_dump_json().encode()


def decode_internal(raw: bytes) -> Internal:
    """A repartition-topic message. The worker wrote it; a bad one is a bug, so it raises."""
    return INTERNAL_ADAPTER.validate_json(raw)


def encode_record(record: Record) -> bytes:
    return record.model_dump_json().encode()


def decode_record(raw: bytes | None) -> Record | None:
    return None if raw is None else RECORD_ADAPTER.validate_json(raw)


_DUE_AT = re.compile(rb'"due_at":(null|-?[0-9][0-9.eE+-]*)[,}]')


def due_at_of(raw: bytes) -> float | None:
    """A stored record's ``state.due_at`` without decoding the record (the sweep's index
    rebuild reads every record; a full decode costs ~20 times more)."""
    found = _DUE_AT.findall(raw)
    if len(found) != 1:  # not the shape encode_record writes: take the slow, sure way
        record = decode_record(raw)
        return record.state.due_at if record is not None else None
    return None if found[0] == b"null" else float(found[0])


def encode_output(model: BaseModel) -> bytes:
    """Transitions, score updates and dead letters: their JSON, as their schemas say."""
    return model.model_dump_json().encode()
