"""Topic names: one place, with the configurable prefix.

Inputs are split by source system (as tracking, e-mail, CRM and product
pipelines produce them); every input topic accepts any event type, and the
worker routes by the ``type`` field. ``INPUT_FOR_TYPE`` is where a producer
should send each type (and where ``leadstream erase`` sends an erase request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class TopicSettings(Protocol):
    """What topic names are made of (``stream_app.config.Settings`` has both)."""

    @property
    def topic_prefix(self) -> str: ...

    @property
    def input_topics(self) -> tuple[str, ...]: ...


INPUTS = (
    "page_views",
    "email_events",
    "content_downloads",
    "form_submissions",
    "webinars",
    "product_usage",
    "lead_profiles",
    "identities",
    "sales_feedback",
)
OUTPUTS = (
    "lead_stage_transitions",
    "lead_score_updates",
    "lead_sla_breaches",
    "lead_erasures",
    "lead_dead_letters",
)

INPUT_FOR_TYPE = {
    "page_view": "page_views",
    "email_open": "email_events",
    "email_click": "email_events",
    "email_reply": "email_events",
    "email_bounce": "email_events",
    "email_unsubscribe": "email_events",
    "email_spam_report": "email_events",
    "content_download": "content_downloads",
    "form_submission": "form_submissions",
    "webinar": "webinars",
    "social_engagement": "page_views",
    "chat": "page_views",  # the site's chat widget, through the web tracking pipeline
    "offline_event": "webinars",  # events, online or in person
    "commerce": "page_views",  # a shop's tracking (Segment's e-commerce spec)
    "product_usage": "product_usage",
    "profile_update": "lead_profiles",
    "identify": "identities",
    "sales_feedback": "sales_feedback",
    # a person's erasure: with their profile, from the CRM or the privacy desk
    "erase": "lead_profiles",
}


@dataclass(frozen=True)
class TopicNames:
    """Every topic name. ``configured_inputs`` (``LEADSTREAM_INPUT_TOPICS``) replaces the
    native inputs, used as given: a pipeline writes where it is configured to."""

    prefix: str = ""
    configured_inputs: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: TopicSettings) -> TopicNames:
        return cls(settings.topic_prefix, settings.input_topics)

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def inputs(self) -> tuple[str, ...]:
        if self.configured_inputs:
            return self.configured_inputs
        return tuple(self.name(t) for t in INPUTS)

    def input_for(self, event_type: str) -> str:
        if self.configured_inputs:
            return self.configured_inputs[0]
        return self.name(INPUT_FOR_TYPE[event_type])

    def repartition(self, app_id: str) -> str:
        """The worker's one internal hop, keyed by subject: events that arrived on another
        partition than their record's, identity claims and answers, decay ticks."""
        return self.name(f"{app_id}-repartition")

    @property
    def transitions(self) -> str:
        return self.name("lead_stage_transitions")

    @property
    def sla_breaches(self) -> str:
        return self.name("lead_sla_breaches")

    @property
    def score_updates(self) -> str:
        return self.name("lead_score_updates")

    @property
    def erasures(self) -> str:
        return self.name("lead_erasures")

    @property
    def dead_letters(self) -> str:
        return self.name("lead_dead_letters")
