"""Bytes at the boundary -> an event, or a dead letter that says why not.

Errors are values here: ``decode`` never raises for bad input. The worker
routes dead letters to their topic; ``simulate`` reports them by line number.

    >>> decode(b'{"type": "page_view"}', topic="page_views").reason
    'invalid'
"""

from __future__ import annotations

from pydantic import ValidationError

from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.events import EVENT_ADAPTER, InboundEvent

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
