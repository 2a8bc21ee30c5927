"""The accepted subset of the Segment spec: what tracking pipelines put on Kafka.

RudderStack's and Segment's Kafka destinations (and Jitsu, Customer.io Data
Pipelines, the Segment libraries through ``collect``) write one JSON object
per event with ``type`` one of ``page``, ``screen``, ``track``, ``identify``,
``alias``, ``group``. Unlike the native events these models *allow* unknown
fields: a real pipeline adds dozens (``channel``, ``integrations``,
``rudderId``...), and only the fields below are read. Their JSON
Schema (``schemas/json/segment_event.json``) documents the subset; how each
field becomes a native event is ``stream_app.ingest.segment``.

Empty strings count as absent (RudderStack sends ``"userId": ""`` for an
anonymous visitor), and numeric ids are read as text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

from schemas.base import ID_MAX_LENGTH, ID_PATTERN, EventTime, Id, Label, Text


def _blank_is_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


#: An id as pipelines send it: text (or a number), "" meaning none.
ForeignId = Annotated[
    Id | None,
    BeforeValidator(_blank_is_none),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": ID_MAX_LENGTH, "pattern": ID_PATTERN},
                {"type": "number"},
                {"type": "null"},
            ],
            "description": "text or a number; an empty string counts as absent",
        }
    ),
]
Properties = Annotated[dict[str, Any], Field(max_length=500)]


class Foreign(BaseModel):
    """Frozen, and tolerant of the fields we do not read."""

    model_config = ConfigDict(frozen=True, extra="allow", str_max_length=65536)


class SegmentCampaign(Foreign):
    """``context.campaign``: the UTM parameters of the visit."""

    name: Label | None = None
    source: Label | None = None
    medium: Label | None = None
    term: Label | None = None
    content: Label | None = None


class SegmentPageContext(Foreign):
    path: Text | None = None
    url: Text | None = None
    title: Text | None = None
    referrer: Text | None = None


class SegmentLocation(Foreign):
    country: Label | None = None


class SegmentContext(Foreign):
    campaign: SegmentCampaign | None = None
    page: SegmentPageContext | None = None
    location: SegmentLocation | None = None
    #: RudderStack puts identify traits here; Segment at the top level.
    traits: Properties | None = None
    #: RudderStack's session id (``context.sessionId``), when its SDK tracks sessions.
    sessionId: ForeignId = None


class SegmentBase(Foreign):
    """What every message needs: an id, a time, and a subject (user id or anonymous id)."""

    messageId: Id
    timestamp: EventTime | None = Field(
        None,
        description=(
            "Segment's clock-skew-corrected time; used when the correction cannot be made "
            "here (no originalTimestamp, sentAt or receivedAt)"
        ),
    )
    originalTimestamp: AwareDatetime | None = Field(
        None, description="the event's time by the device's clock"
    )
    sentAt: AwareDatetime | None = Field(
        None, description="when the device sent the message, by its clock"
    )
    receivedAt: EventTime | None = Field(
        None,
        description=(
            "when the collecting server received the message, by its clock: the event time "
            "is receivedAt - (sentAt - originalTimestamp), and may not pass receivedAt by "
            "more than the worker's LEADSTREAM_MAX_CLOCK_SKEW_SECONDS"
        ),
    )
    userId: ForeignId = None
    anonymousId: ForeignId = None
    context: SegmentContext | None = None

    @model_validator(mode="after")
    def _needs_time_and_subject(self) -> SegmentBase:
        if self.timestamp is None and self.originalTimestamp is None:
            raise ValueError("a message needs a timestamp or an originalTimestamp")
        if self.userId is None and self.anonymousId is None and self.email() is None:
            raise ValueError(
                "a message needs a userId, an anonymousId, or both (or, from an e-mail "
                "provider, an address in properties.email or traits.email)"
            )
        return self

    def email(self) -> str | None:
        """The person's e-mail address, when the message names one (e-mail providers'
        events often carry only that): ``properties.email``, ``traits.email``, then
        ``context.traits.email``."""
        for holder in (
            getattr(self, "properties", None),
            getattr(self, "traits", None),
            self.context.traits if self.context else None,
        ):
            value = holder.get("email") if isinstance(holder, dict) else None
            if isinstance(value, str) and "@" in value:
                return value
        return None


class SegmentPage(SegmentBase):
    type: Literal["page"]
    name: Label | None = None
    properties: Properties = Field(default_factory=dict)


class SegmentScreen(SegmentBase):
    """Mobile screens: accepted and counted as ignored (no rule scores a screen yet)."""

    type: Literal["screen"]
    name: Label | None = None
    properties: Properties = Field(default_factory=dict)


class SegmentTrack(SegmentBase):
    type: Literal["track"]
    event: Label = Field(min_length=1, description="the event name, e.g. 'Email Link Clicked'")
    properties: Properties = Field(default_factory=dict)


class SegmentIdentify(SegmentBase):
    type: Literal["identify"]
    traits: Properties | None = None


class SegmentAlias(SegmentBase):
    """Links ``previousId`` (an anonymous id, usually) to ``userId``."""

    type: Literal["alias"]
    previousId: ForeignId = None


class SegmentGroup(SegmentBase):
    """The lead's account: ``groupId`` and the company's traits."""

    type: Literal["group"]
    groupId: ForeignId = None
    traits: Properties | None = None


SegmentEvent = Annotated[
    SegmentPage | SegmentScreen | SegmentTrack | SegmentIdentify | SegmentAlias | SegmentGroup,
    Field(discriminator="type"),
]
SEGMENT_MODELS: tuple[type[SegmentBase], ...] = (
    SegmentPage,
    SegmentScreen,
    SegmentTrack,
    SegmentIdentify,
    SegmentAlias,
    SegmentGroup,
)
#: The ``type`` values that mark a message as Segment-spec.
SEGMENT_TYPES = frozenset(m.model_fields["type"].annotation.__args__[0] for m in SEGMENT_MODELS)  # type: ignore[union-attr]
SEGMENT_ADAPTER: TypeAdapter[SegmentEvent] = TypeAdapter(SegmentEvent)
