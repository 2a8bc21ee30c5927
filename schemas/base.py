"""Shared building blocks of every message model.

Every model is frozen and rejects unknown fields, so a producer's typo is a
dead letter with a reason, not a silently ignored field. String fields are
bounded: a 10 MB "title" is rejected at the boundary, not stored per lead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

#: The longest id, in characters.
ID_MAX_LENGTH = 200
#: The id alphabet's portable part as a JSON Schema pattern (no ``\p{..}`` classes: Python's
#: ``re`` and ECMA-262 without the u flag lack them): no C0 or C1 control character, DEL,
#: no-break or other Unicode space, zero-width or bidi format character, line or paragraph
#: separator, byte-order mark or BMP private-use character. The worker's rule is stricter
#: (``str.isprintable``: also rarer format characters and unassigned code points).
ID_PATTERN = (
    r"^[^\x00-\x1f\x7f-\xa0\xad\u0600-\u0605\u061c\u06dd\u070f\u1680\u180e"
    r"\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ue000-\uf8ff\ufeff\ufff9-\ufffb]*$"
)


def _valid_id(value: str) -> str:
    """An id must be something a person can read, type and put in a URL (issue 25, item 7).

    Control, format (zero-width, bidi), private-use and unassigned characters and
    separators other than the space are refused: an id with a NUL or a line break
    would be stored and served but could not be told apart from another in a log,
    a CSV or a URL. The error names the character's position and code point, never
    the id (it may be an e-mail address).
    """
    if not 0 < len(value) <= ID_MAX_LENGTH:
        raise PydanticCustomError(
            "invalid_id",
            "an id must be 1 to {limit} characters (this one has {length})",
            {"limit": ID_MAX_LENGTH, "length": len(value)},
        )
    if not value.isprintable():
        at = next(i for i, ch in enumerate(value) if not ch.isprintable())
        raise PydanticCustomError(
            "invalid_id",
            "an id must be printable: character {position} is U+{code}",
            {"position": at + 1, "code": f"{ord(value[at]):04X}"},
        )
    return value


#: Identifiers: event ids, lead ids, anonymous ids, campaign ids. Whitespace around
#: them is dropped; what remains is 1 to ``ID_MAX_LENGTH`` printable characters.
Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(_valid_id),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH, "pattern": ID_PATTERN}
    ),
]
#: Short labels: countries, titles, industries, form field values.
Label = Annotated[str, StringConstraints(max_length=300)]
#: URLs, paths and free text.
Text = Annotated[str, StringConstraints(max_length=4096)]

#: Event times outside this range are rejected: they are clock bugs, and a
#: year-9999 timestamp would otherwise freeze a lead's decay forever.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2100, 1, 1, tzinfo=UTC)
#: How far, by default, an event's time may be ahead of the time its message reached us
#: (``LEADSTREAM_MAX_CLOCK_SKEW_SECONDS``; ``stream_app.codec.decode``). The range above is
#: only a sanity check: within it, one event dated 2099 would make every real event of
#: its lead "late" (older than the horizon behind its newest event), so the time the
#: message arrived is the bound that matters.
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300.0


def _in_sane_range(value: datetime) -> datetime:
    if not EARLIEST_EVENT_TIME <= value < LATEST_EVENT_TIME:
        raise ValueError(
            f"event time {value.isoformat()} is outside "
            f"[{EARLIEST_EVENT_TIME.date()}, {LATEST_EVENT_TIME.date()})"
        )
    return value


#: A timezone-aware event time in a sane range (naive datetimes are rejected).
EventTime = Annotated[AwareDatetime, AfterValidator(_in_sane_range)]


class Model(BaseModel):
    """Frozen, strict about unknown fields; the base of every message.

    In a serialization-mode JSON Schema (the API's document) a field with a
    default is required too: a dumped model always has every key.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_max_length=65536,
        json_schema_serialization_defaults_required=True,
    )
