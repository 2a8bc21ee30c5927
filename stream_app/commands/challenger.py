"""The challenger's settings: the champion's, under names of its own (``python -m stream_app
challenger``; docs/outcomes.md)."""

from __future__ import annotations

from pathlib import Path

from stream_app.config import Settings
from stream_app.topics import TopicNames


def challenger_env(champion: Settings, rules_path: Path, port: int | None = None) -> dict[str, str]:
    """The environment of ``champion``'s challenger: its own app id, topic prefix, Redis key
    prefix and data directory, the champion's input topics, other rules."""
    name = champion.challenger
    data_dir = champion.data_dir
    return {
        "LEADSTREAM_APP_ID": f"{champion.app_id}-{name}",
        "LEADSTREAM_TOPIC_PREFIX": f"{champion.topic_prefix}{name}.",
        "LEADSTREAM_REDIS_KEY_PREFIX": champion.challenger_key_prefix,
        "LEADSTREAM_INPUT_TOPICS": ",".join(TopicNames.of(champion).inputs),
        "LEADSTREAM_RULES_PATH": str(rules_path),
        "LEADSTREAM_DATA_DIR": str(data_dir.parent / f"{data_dir.name}-{name}"),
        "LEADSTREAM_WORKER_PORT": str(champion.worker_port + 1 if port is None else port),
    }
