"""A Redis client from settings (the password stays a secret)."""

from __future__ import annotations

import redis.asyncio as aioredis

from stream_app.config import Settings


def redis_client(settings: Settings) -> aioredis.Redis:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return aioredis.Redis.from_url(
        settings.redis_url, password=password, socket_timeout=5, socket_connect_timeout=5
    )
