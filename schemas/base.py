"""Shared building blocks of every message model.

Every model is frozen and rejects unknown fields, so a producer's typo is a
dead letter with a reason, not a silently ignored field. String fields are
bounded: a 10 MB "title" is rejected at the boundary, not stored per lead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints

#: Identifiers: event ids, lead ids, anonymous ids, campaign ids.
Id = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
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
