"""Dead letters: messages that could not be accepted, with the reason.

Nothing is dropped silently: a message that is not JSON, breaks the schema or
is too large lands on ``lead_dead_letters`` with its raw bytes (base64; a
person's values redacted: ``stream_app.codec.redact``), the reason and where
it came from, and the worker carries on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from schemas.base import Label, Model, Text

DeadLetterReason = Literal[
    "not_json",
    "not_utf8",
    "too_large",
    "too_deep",
    "unknown_type",
    "invalid",
    # an id (event, lead, anonymous, account...) outside the id alphabet (schemas.base.Id):
    # empty, over 200 characters, or with a control, format or separator character
    "invalid_id",
    "wrong_topic",
    "future_event",  # an event time later than its message's arrival, beyond the clock skew
    "processing_error",  # valid input that the worker failed on: a bug, kept for replay
    # crm-sync: the CRM refused a lead's record for good (a 4xx: a missing property, a bad
    # e-mail address); the error is the CRM's own text
    "crm_refused",
]


class DeadLetter(Model):
    # raw is bytes in Python and base64 text in JSON (both ways)
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    type: Literal["dead_letter"] = "dead_letter"
    reason: DeadLetterReason
    error: Text = Field(description="what was wrong, for a human")
    raw: bytes = Field(
        description="the message value as received, personal values redacted (see "
        "redacted), first 64 KiB; URL-safe base64 in JSON"
    )
    raw_size: int = Field(ge=0, description="size in bytes of the original value")
    redacted: int = Field(
        0,
        ge=0,
        description="how many personal values raw lost: of e-mail, phone, name, address, "
        "ip... keys of a JSON value (an address keeps its domain), and e-mail addresses "
        "anywhere; raw is re-serialised JSON when a key's value was replaced",
    )
    topic: Label | None = None
    partition: int | None = None
    offset: int | None = None
    key: Text | None = None
    line: int | None = Field(None, description="line number, for offline replay input")
