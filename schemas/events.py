"""Inbound events: what tracking, email, CRM and product systems send.

Each event is JSON with a ``type`` discriminator::

    {"type": "page_view", "event_id": "e-1", "occurred_at": "2026-11-02T10:00:00Z",
     "anonymous_id": "cookie-42", "path": "/pricing"}

``parse_event(data)`` validates a dict or JSON bytes into the right model.
Every event carries an ``event_id`` (duplicates never count twice), an aware
``occurred_at`` (event time: all scoring uses it), and ``lead_id`` and/or
``anonymous_id``; optionally ``received_at``, when it reached the system that
first recorded it, which bounds ``occurred_at`` (``stream_app.codec.decode``).

Beside the scored events, an input topic carries one request: ``erase``
(``Erase``), which removes a person. It is not scored (no rule can name it:
it is not in ``EVENT_TYPES``); ``InputEvent`` is everything an input topic
accepts, ``parse_input`` validates it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, model_validator

from schemas.base import EventTime, Id, Label, Model, Text

FunnelStage = Literal["top", "middle", "bottom"]
FormKind = Literal[
    "contact_sales",
    "demo_request",
    "trial_signup",
    "quote_request",
    "consultation",
    "newsletter",
    "gated_content",
    "webinar_registration",
]
WebinarAction = Literal["registered", "attended", "watched_replay"]
ProductAction = Literal[
    "signup", "activated", "feature_used", "invited_teammate", "usage_limit_hit"
]
SalesOutcome = Literal["accepted", "rejected", "opportunity", "won", "lost"]
ChatAction = Literal["started", "answered"]
OfflineAction = Literal["registered", "attended", "visited_booth", "met_sales", "no_show"]
OfflineKind = Literal["trade_show", "conference", "meetup", "roadshow", "workshop", "dinner"]
CommerceAction = Literal["added_to_cart", "added_to_wishlist", "loyalty_signup"]
Seniority = Literal["intern", "individual", "manager", "director", "vp", "c_level", "owner"]


#: An e-mail address (only its shape is checked).
Email = Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class Utm(Model):
    """UTM parameters of the visit or click that brought the event."""

    source: Label | None = None
    medium: Label | None = None
    campaign: Label | None = None
    term: Label | None = None
    content: Label | None = None


class EventBase(Model):
    """Fields every inbound event has."""

    event_id: Id
    occurred_at: EventTime
    received_at: EventTime | None = Field(
        None,
        description=(
            "when the event reached the first system that recorded it (a collector, a "
            "webhook receiver; Segment's receivedAt): an occurred_at later than this, or "
            "than the message's Kafka timestamp, by more than the worker's "
            "LEADSTREAM_MAX_CLOCK_SKEW_SECONDS is a dead letter (future_event)"
        ),
    )
    lead_id: Id | None = None
    anonymous_id: Id | None = None
    source: Label | None = None
    campaign: Label | None = None
    utm: Utm | None = None

    @model_validator(mode="after")
    def _needs_an_identity(self) -> EventBase:
        if self.lead_id is None and self.anonymous_id is None:
            raise ValueError("an event needs a lead_id, an anonymous_id, or both")
        return self


class PageView(EventBase):
    type: Literal["page_view"] = "page_view"
    path: Text
    url: Text | None = None
    title: Text | None = None
    referrer: Text | None = None
    session_id: Id | None = None
    country: Label | None = None
    engaged_seconds: float | None = Field(
        None, ge=0, le=24 * 3600, description="time the visitor was active on the page"
    )


class _EmailEvent(EventBase):
    campaign_id: Id | None = None


class EmailOpen(_EmailEvent):
    type: Literal["email_open"] = "email_open"


class EmailClick(_EmailEvent):
    type: Literal["email_click"] = "email_click"
    url: Text | None = None


class EmailReply(_EmailEvent):
    type: Literal["email_reply"] = "email_reply"


class EmailBounce(_EmailEvent):
    type: Literal["email_bounce"] = "email_bounce"


class EmailUnsubscribe(_EmailEvent):
    type: Literal["email_unsubscribe"] = "email_unsubscribe"


class EmailSpamReport(_EmailEvent):
    type: Literal["email_spam_report"] = "email_spam_report"


class ContentDownload(EventBase):
    type: Literal["content_download"] = "content_download"
    asset_id: Id
    asset_type: Label | None = None
    funnel_stage: FunnelStage | None = None


class FormSubmission(EventBase):
    type: Literal["form_submission"] = "form_submission"
    form_kind: FormKind
    form_id: Id | None = None
    fields: dict[Label, Label] = Field(default_factory=dict, max_length=100)


class Webinar(EventBase):
    type: Literal["webinar"] = "webinar"
    action: WebinarAction
    webinar_id: Id | None = None
    minutes: float | None = Field(None, ge=0, le=24 * 60)


class SocialEngagement(EventBase):
    type: Literal["social_engagement"] = "social_engagement"
    network: Label
    action: Label


class Chat(EventBase):
    """A live chat on the site: the visitor started one, or answered our agent's or bot's opener."""

    type: Literal["chat"] = "chat"
    action: ChatAction
    chat_id: Id | None = None
    path: Text | None = None
    messages: int | None = Field(None, ge=0, le=10_000, description="messages the visitor sent")


class OfflineEvent(EventBase):
    """An event in person: a trade show, a conference, a meetup (badge scans, CRM lists)."""

    type: Literal["offline_event"] = "offline_event"
    action: OfflineAction
    event_kind: OfflineKind | None = None
    event_name: Label | None = None


class Commerce(EventBase):
    """A shop's buying signals: a product in the cart or the wishlist, a loyalty sign-up."""

    type: Literal["commerce"] = "commerce"
    action: CommerceAction
    product_id: Id | None = None
    value: float | None = Field(None, ge=0, description="the product's price, in currency")
    currency: Label | None = None


class ProductUsage(EventBase):
    type: Literal["product_usage"] = "product_usage"
    action: ProductAction
    feature: Label | None = None


class Profile(Model):
    """Who the lead is: demographic and firmographic facts, and BANT answers.

    Every field is optional; an update sets only the fields it carries.
    """

    email: Email | None = None
    job_title: Label | None = None
    seniority: Seniority | None = None
    department: Label | None = None
    industry: Label | None = None
    company_name: Label | None = None
    account_id: Id | None = None
    company_size: int | None = Field(None, ge=0, le=10_000_000)
    annual_revenue: float | None = Field(None, ge=0)
    country: Label | None = None
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None
    timeline: Label | None = None


class ProfileUpdate(EventBase, Profile):
    type: Literal["profile_update"] = "profile_update"


class Identify(EventBase):
    """Links an anonymous visitor to a known lead; both ids are required."""

    type: Literal["identify"] = "identify"
    lead_id: Id
    anonymous_id: Id
    traits: Profile | None = None


class SalesFeedback(EventBase):
    type: Literal["sales_feedback"] = "sales_feedback"
    lead_id: Id
    outcome: SalesOutcome
    reason: Text | None = None


class Erase(Model):
    """Erase a person: their record, every anonymous visitor merged into them, their projection.

    Names the person by exactly one of ``lead_id``, ``anonymous_id`` or
    ``email`` (the pseudonymous anonymous id ``email:<32 hex>`` of the address,
    as Segment-spec e-mail events are scored under: the worker maps it at the
    boundary and never stores the address). An anonymous id that was merged into
    a lead erases that lead; an address also erases each visitor that told it
    before joining any lead, or the lead it joined since. Send it to the input
    topic the person's other events go to, keyed like them (lead id, else
    anonymous id), so it is applied in order with them. The worker answers with an ``erasure`` on
    ``lead_erasures`` whose ``erasure_id`` is this ``event_id``.
    """

    type: Literal["erase"] = "erase"
    event_id: Id
    occurred_at: EventTime = Field(description="when the erasure was requested")
    lead_id: Id | None = None
    anonymous_id: Id | None = None
    email: Email | None = None
    reason: Label | None = Field(None, description="e.g. 'GDPR art. 17 request', a ticket id")
    requested_by: Label | None = Field(None, description="who asked: an operator, a system")

    @model_validator(mode="after")
    def _names_one_person(self) -> Erase:
        named = [self.lead_id, self.anonymous_id, self.email]
        if sum(value is not None for value in named) != 1:
            raise ValueError("an erase names exactly one of lead_id, anonymous_id, email")
        return self


ScoredEvent = (
    PageView
    | EmailOpen
    | EmailClick
    | EmailReply
    | EmailBounce
    | EmailUnsubscribe
    | EmailSpamReport
    | ContentDownload
    | FormSubmission
    | Webinar
    | SocialEngagement
    | Chat
    | OfflineEvent
    | Commerce
    | ProductUsage
    | ProfileUpdate
    | Identify
    | SalesFeedback
)
InboundEvent = Annotated[ScoredEvent, Field(discriminator="type")]
#: What an input topic accepts: a scored event, or an erase request.
InputEvent = Annotated[ScoredEvent | Erase, Field(discriminator="type")]

EVENT_MODELS: tuple[type[EventBase], ...] = (
    PageView,
    EmailOpen,
    EmailClick,
    EmailReply,
    EmailBounce,
    EmailUnsubscribe,
    EmailSpamReport,
    ContentDownload,
    FormSubmission,
    Webinar,
    SocialEngagement,
    Chat,
    OfflineEvent,
    Commerce,
    ProductUsage,
    ProfileUpdate,
    Identify,
    SalesFeedback,
)

#: type name -> model, e.g. EVENT_TYPES["page_view"] is PageView.
EVENT_TYPES: dict[str, type[EventBase]] = {m.model_fields["type"].default: m for m in EVENT_MODELS}

#: Every model an input topic accepts (the scored ones, then ``Erase``).
INPUT_MODELS: tuple[type[Model], ...] = (*EVENT_MODELS, Erase)

EVENT_ADAPTER: TypeAdapter[InboundEvent] = TypeAdapter(InboundEvent)
INPUT_ADAPTER: TypeAdapter[InputEvent] = TypeAdapter(InputEvent)


def parse_event(data: bytes | str | dict[str, object]) -> InboundEvent:
    """Validate JSON (bytes/str) or a dict into its event model; raises ValidationError."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)


def parse_input(data: bytes | str | dict[str, object]) -> InputEvent:
    """Like ``parse_event``, but also accepts an ``erase`` request."""
    if isinstance(data, dict):
        return INPUT_ADAPTER.validate_python(data)
    return INPUT_ADAPTER.validate_json(data)
