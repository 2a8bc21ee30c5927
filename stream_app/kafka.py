"""Kafka helpers shared by the worker, the demo and the tools."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream_app.config import Settings
from stream_app.errors import TopologyError


def kafka_options(settings: Settings) -> dict[str, Any]:
    """aiokafka connection options from settings (security settings pass through)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        import ssl  # noqa: PLC0415

        options["ssl_context"] = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    return options


async def ensure_topics(
    settings: Settings, names: Iterable[str], configs: dict[str, str] | None = None
) -> None:
    """Create the topics that do not exist yet, with the configured partition count,
    replication factor and ``min.insync.replicas`` (and topic ``configs``, e.g.
    ``cleanup.policy``, if given).

    Done before Faust starts: a send to a topic that does not exist stalls
    Faust's single producer buffer, and a broker's auto-creation would pick
    its own partition count.
    """
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.replication_factor,
                topic_configs={**settings.topic_configs(), **(configs or {})},
            )
            for name in names
            if name not in existing
        ]
        if wanted:
            # created meanwhile by another process: fine
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
            await _wait_for_leaders(admin, [t.name for t in wanted])
    finally:
        await admin.close()


async def check_copartitioned(settings: Settings, names: list[str]) -> None:
    """Every topic the worker reads must have ``topic_partitions`` partitions.

    A subject's record lives on partition murmur2(id) % ``topic_partitions``
    of every topic the worker reads and of the records' changelog; an input
    topic created elsewhere with another count would put a subject's events
    on partitions whose records live elsewhere, so the worker refuses to start.
    """
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    wrong = {
        t["topic"]: len(t.get("partitions") or [])
        for t in described
        if len(t.get("partitions") or []) != settings.topic_partitions
    }
    if wrong:
        listed = ", ".join(f"{name} has {n}" for name, n in sorted(wrong.items()))
        raise TopologyError(
            f"LEADSTREAM_TOPIC_PARTITIONS is {settings.topic_partitions}, but {listed}: "
            "set it to the input topics' partition count (every topic the worker reads "
            "must have the same count), or repartition the topics"
        )


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], limit_s: float = 15
) -> None:
    """Until every partition of new topics has a leader (sends fail over to retries before)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(topics)
        if all(
            t.get("error_code", 0) == 0
            and t.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.1)
