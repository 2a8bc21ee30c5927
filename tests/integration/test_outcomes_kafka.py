"""evaluate --from-kafka reads the input topics from the start and judges what the file gives."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream_app.commands.cli import main
from tests.factories import DEFAULT_RULES
from tools.outcomes import with_outcomes

pytestmark = pytest.mark.integration


async def test_evaluate_from_kafka_equals_evaluate_from_the_file(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = uuid.uuid4().hex[:8]
    topic = f"t{run}.events"
    events = list(with_outcomes(400, 2, id_prefix=f"k{run}-"))
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in events))
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # one partition: the topic keeps the file's order exactly
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for event in events:
            subject = event.get("lead_id") or event["anonymous_id"]
            await producer.send(topic, key=subject.encode(), value=json.dumps(event).encode())
        await producer.flush()
    finally:
        await producer.stop()

    common = ["evaluate", "--rules", str(DEFAULT_RULES), "--quiet", "--min-leads", "30"]
    common += ["--min-positive", "5", "--cut", "2026-10-15T00:00:00Z"]
    from_file, from_kafka = tmp_path / "file.json", tmp_path / "kafka.json"
    assert await asyncio.to_thread(main, [*common, str(events_file), "--json", str(from_file)]) == 0
    monkeypatch.setenv("LEADSTREAM_INPUT_TOPICS", topic)
    assert await asyncio.to_thread(main, [*common, "--from-kafka", "--json", str(from_kafka)]) == 0
    a, b = json.loads(from_file.read_text()), json.loads(from_kafka.read_text())
    assert a["leads"]["judged"] >= 30
    assert a == b
