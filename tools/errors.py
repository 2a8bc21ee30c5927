"""The tooling's failures: leaves of the product's root, so either CLI prints them as one line."""

from stream_app.errors import LeadstreamError


class StackError(LeadstreamError):
    """The local Kafka/Redis stack could not be started, reached or stopped."""
