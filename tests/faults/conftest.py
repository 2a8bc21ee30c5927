"""Fault scenarios run on the real stack, like the integration tests (never skipped)."""

from tests.integration.conftest import kafka_bootstrap, redis_client, settings

__all__ = ["kafka_bootstrap", "redis_client", "settings"]
