"""The real broker and the real Redis answer, and carry data both ways."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration


async def test_kafka_round_trip_on_a_fresh_topic(kafka_bootstrap: str, unique: str) -> None:
    topic = f"smoke-{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, key=f"k{i % 3}".encode(), value=f"v{i}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"smoke-{unique}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[tuple[bytes, bytes]] = []
        async with asyncio.timeout(30):
            while len(got) < 10:
                batch = await consumer.getmany(timeout_ms=1000)
                got += [(m.key, m.value) for msgs in batch.values() for m in msgs]
        await consumer.commit()
    finally:
        await consumer.stop()
    assert sorted(v for _, v in got) == sorted(f"v{i}".encode() for i in range(10))
    # same key, same partition, in order
    per_key: dict[bytes, list[bytes]] = {}
    for key, value in got:
        per_key.setdefault(key, []).append(value)
    assert per_key[b"k0"] == [b"v0", b"v3", b"v6", b"v9"]


async def test_redis_round_trip(redis_client: aioredis.Redis, unique: str) -> None:
    key = f"ls:test:{unique}"
    try:
        await redis_client.hset(key, mapping={"stage": "mql", "total": "65.0"})
        await redis_client.zadd(f"{key}:z", {"L1": 65.0, "L2": 80.0})
        assert await redis_client.hgetall(key) == {b"stage": b"mql", b"total": b"65.0"}
        assert await redis_client.zrevrange(f"{key}:z", 0, 0) == [b"L2"]
    finally:
        await redis_client.delete(key, f"{key}:z")
