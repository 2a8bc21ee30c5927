"""Integration tests talk to the real Kafka and Redis (``make stack-up`` starts them).

A missing server is a failure, never a skip: a skipped integration suite is a
green lie. Each test uses uuid-named topics, groups and keys, so runs never
see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from stream_app.config import Settings
from tools.devstack import kafka_answers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings) -> str:
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not kafka_answers(int(port)):
        pytest.fail(
            f"Kafka does not answer at {settings.kafka_bootstrap}. Start the local stack with "
            "`make stack-up` (log: .stack/kafka/logs/server.log), or point "
            "LEADSTREAM_KAFKA_BOOTSTRAP at a broker on this machine."
        )
    return settings.kafka_bootstrap


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    client = aioredis.Redis.from_url(settings.redis_url, password=password)
    try:
        await client.ping()
    except (aioredis.RedisError, OSError) as exc:
        await client.aclose()
        pytest.fail(
            f"Redis does not answer at {settings.redis_url} ({exc}). Start the local stack "
            "with `make stack-up` (log: .stack/redis/redis.log)."
        )
    yield client
    await client.aclose()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]
