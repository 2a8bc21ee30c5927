"""The Faust app: topics and the records table; the agents are in ``stream_app.worker.agents``.

``create_app(settings)`` declares them and registers the agents;
``python -m stream_app worker`` runs it.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.worker import Worker as FaustWorker

from stream_app.config import Settings
from stream_app.ingest.tracks import load_tracks
from stream_app.rules_file import Rules, load_rules
from stream_app.topics import TopicNames
from stream_app.worker import faust_fixes, restore
from stream_app.worker.agents import Context, register
from stream_app.worker.health import WorkerMetrics
from stream_app.worker.records import DueIndex, RecordCache


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if protocol in ("SSL", "SASL_SSL"):
        import ssl  # noqa: PLC0415

        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        ssl_context = ssl.create_default_context(cafile=cafile)
        if protocol == "SSL":
            return faust.SSLCredentials(ssl_context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
        ssl_context=ssl_context,
    )


def worker_topics(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes, except Faust's changelogs."""
    names = TopicNames.of(settings)
    internal = [names.repartition(settings.app_id)]
    outputs = [
        names.transitions,
        names.score_updates,
        names.sla_breaches,
        names.erasures,
        names.dead_letters,
    ]
    return [*names.inputs, *internal, *outputs]


MIB = 1024 * 1024
#: How long a changelog tombstone outlives the values it removed (``delete.retention.ms``).
CHANGELOG_TOMBSTONE_DAYS = 7


def topic_configs_of(settings: Settings) -> dict[str, dict[str, str]]:
    """Configs of the topics the worker creates, by name, beyond ``Settings.topic_configs``:
    the dead letters keep a message's raw bytes (redacted: ``codec.redact``), so only for
    ``dead_letter_retention_days``."""
    days = settings.dead_letter_retention_days
    retention = str(round(days * 24 * 3600 * 1000))
    return {TopicNames.of(settings).dead_letters: {"retention.ms": retention}}


def table_options(settings: Settings) -> dict[str, Any]:
    """Arguments for ``app.Table``: partitions, raw bytes, RocksDB memory, changelog segments.

    Faust's RocksDB defaults (64 MB x 3 memtables and a 2 GiB block cache per
    partition) let the worker's RSS grow with the number of leads; these bound
    it. Small changelog segments let the broker's compaction keep a replay from
    the changelog close to one record per key.

    An erased record's older values stay on the changelog until compaction
    removes them, and Kafka compacts closed segments only: ``segment.ms`` closes
    a segment (at its next write) at most ``changelog_compaction_lag_hours``
    after it opened, and ``max.compaction.lag.ms`` makes it due for the log
    cleaner that long after its writes, whatever the dirty ratio. The tombstone
    itself (a key, no value) stays ``delete.retention.ms`` more, a week: a
    worker restoring from an older local state must still see it, or it would
    keep the erased record (Faust reads the changelog from its last offset).
    """
    lag_ms = str(round(settings.changelog_compaction_lag_hours * 3600 * 1000))
    return {
        "partitions": settings.topic_partitions,
        "key_type": bytes,
        "value_type": bytes,
        "options": {  # a new dict per table: Faust's store pops keys from it
            "write_buffer_size": settings.rocksdb_write_buffer_mb * MIB,
            "max_write_buffer_number": 2,
            "block_cache_size": settings.rocksdb_block_cache_mb * MIB,
        },
        "extra_topic_configs": {
            "segment.bytes": settings.changelog_segment_mb * MIB,
            "segment.ms": lag_ms,
            "max.compaction.lag.ms": lag_ms,
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": str(CHANGELOG_TOMBSTONE_DAYS * 24 * 3600 * 1000),
            **settings.topic_configs(),
        },
    }


def app_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``faust.App`` for the worker (and the benchmark's Faust phases,
    so they pay exactly the worker's Faust price)."""
    return {
        "broker": [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")],
        "broker_credentials": _credentials(settings),
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.replication_factor,
        "topic_allow_declare": True,
        "processing_guarantee": "at_least_once",
        "broker_session_timeout": settings.session_timeout_seconds,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_seconds / 3),
        "consumer_group_instance_id": settings.instance_id,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": False,
        "table_standby_replicas": settings.table_standby_replicas,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }


class Worker(FaustWorker):
    """Faust's worker without its terminal spinner.

    At log level WARNING or above Faust adds a handler that advances a spinner
    on every log record and turns the root logger to DEBUG for it, so every
    debug call in Faust and aiokafka builds a record: measured 13 % fewer
    events/s (18 % more CPU per event) than at INFO. A quieter worker must not
    be a slower one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None


def create_app(settings: Settings | None = None, rules: Rules | None = None) -> faust.App:
    settings = settings or Settings()
    rules = rules or load_rules(settings.rules_path)
    faust_fixes.apply()  # see stream_app/worker/faust_fixes.py
    names = TopicNames.of(settings)
    app = faust.App(settings.app_id, **app_options(settings))
    restore.enable(app, settings)  # the records table restored in bulk (restore.py)
    # One Faust topic over the inputs and the repartition topic: one agent reads both,
    # and Faust gives one worker partition p of each, with p of the records' changelog.
    source = app.topic(
        *names.inputs,
        names.repartition(settings.app_id),
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        internal=True,
    )
    register(
        Context(
            app=app,
            settings=settings,
            rules=rules,
            names=names,
            source=source,
            records=app.Table("lead-records", **table_options(settings)),
            cache=RecordCache(limit=settings.record_cache_size),
            due=DueIndex(),
            metrics=WorkerMetrics(),
            tracks=load_tracks(settings.tracks_path),
        )
    )
    return app
