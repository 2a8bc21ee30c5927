"""``make demo``: realistic prospect traffic through the live local stack.

Seeded traffic for a few hundred prospects (anonymous browsing, identify on a
form, e-mail campaigns, downloads, demo requests, some going cold) is produced
to the input topics on Kafka, read back by a consumer group, scored, and each
stage transition is printed the way a sales notification bot would show it;
every lead's current state is written to Redis.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.dead_letter import DeadLetter
from schemas.transitions import StageTransition
from stream_app.codec import decode
from stream_app.config import Settings
from stream_app.kafka import ensure_topics, kafka_options
from stream_app.scoring.funnel import funnel
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import load_rules
from stream_app.topics import TopicNames
from stream_app.traffic import generate

STAGE_LABEL = {"mql": "MQL", "sql": "SQL", "pql": "PQL"}


def bot_line(t: StageTransition) -> str:
    """One transition as a sales notification bot would post it."""
    who = t.lead_id + (f" ({t.account_id})" if t.account_id else "")
    move = f"{STAGE_LABEL.get(t.from_stage, t.from_stage)} -> "
    move += STAGE_LABEL.get(t.to_stage, t.to_stage)
    s = t.scores
    why = ", ".join(f"{c.rule} {c.points:+g}" for c in t.contributions[:4])
    trigger = (
        f"{t.triggering_event_type} {t.triggering_event_id}" if t.triggering_event_id else "decay"
    )
    extra = f" [{t.detail}]" if t.detail else ""
    return (
        f"{t.occurred_at:%Y-%m-%d %H:%M}  {who:32} {move:24} score {s.total:6.1f} "
        f"(fit {s.fit:g} {s.grade}, engagement {s.engagement:g})  {t.reason}{extra}  "
        f"why: {why}  trigger: {trigger}"
    )


async def produce(settings: Settings, events: list[dict[str, Any]], topics: TopicNames) -> None:
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", linger_ms=5)
    await producer.start()
    try:
        for event in events:
            key = (event.get("lead_id") or event.get("anonymous_id") or "").encode()
            value = json.dumps(event, separators=(",", ":")).encode()
            await producer.send(topics.input_for(event["type"]), key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def run_demo(settings: Settings, prospects: int, seed: int) -> int:
    rules = load_rules(settings.rules_path)
    run_id = uuid.uuid4().hex[:6]
    topics = TopicNames(settings.topic_prefix)
    events = list(generate(prospects, seed, id_prefix=f"d{run_id}-"))
    print(
        f"demo {run_id}: {len(events)} events for {prospects} prospects, rules {rules.stamp}",
        file=sys.stderr,
    )
    await ensure_topics(settings, topics.inputs)
    await produce(settings, events, topics)
    print(f"produced to {', '.join(topics.inputs)}; now reading them back", file=sys.stderr)

    import redis.asyncio as aioredis  # noqa: PLC0415

    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    store = aioredis.Redis.from_url(settings.redis_url, password=password)
    consumer = AIOKafkaConsumer(
        *topics.inputs,
        **kafka_options(settings),
        group_id=f"leadstream-demo-{run_id}",
        auto_offset_reset="earliest",
    )
    replay = Replay(rules)
    mine = 0
    await consumer.start()
    try:
        while mine < len(events):
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if not batch:
                continue
            records = sorted(
                (m for msgs in batch.values() for m in msgs), key=lambda m: m.timestamp
            )
            for record in records:
                decoded = decode(
                    record.value, topic=record.topic, partition=record.partition,
                    offset=record.offset, key=record.key,
                )  # fmt: skip
                if isinstance(decoded, DeadLetter):
                    print(f"dead letter: {decoded.reason}: {decoded.error}", file=sys.stderr)
                    continue
                if not decoded.event_id.startswith(f"d{run_id}-"):
                    continue  # an earlier demo run's events on the same topics
                mine += 1
                step = replay.process(decoded)
                for transition in step.transitions:
                    print(bot_line(transition), flush=True)
                if step.update is not None:
                    u = step.update
                    await store.hset(
                        f"{settings.redis_key_prefix}demo:lead:{u.lead_id}",
                        mapping={"stage": u.stage, "total": u.scores.total,
                                 "grade": u.scores.grade, "version": u.version},
                    )  # fmt: skip
    finally:
        await consumer.stop()
        await store.aclose()
    print("\n".join(funnel(replay.leads()).lines()), file=sys.stderr)
    return 0


def main(prospects: int = 300, seed: int = 7) -> int:
    return asyncio.run(run_demo(Settings(), prospects, seed))
