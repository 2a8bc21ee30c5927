"""The tooling's failures: leaves of the product's root, so either CLI prints them as one line."""

from stream_app.errors import LeadstreamError


class StackError(LeadstreamError):
    """The local Kafka/Redis stack could not be started, reached or stopped."""


class LaunchError(LeadstreamError):
    """A launched process died or did not become ready in time (the message has its log)."""
