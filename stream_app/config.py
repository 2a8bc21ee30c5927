"""Every setting Leadstream reads, in one frozen class.

Each field is read from the environment variable named in its description
(prefix ``LEADSTREAM_``), or from a ``.env`` file in the working directory.
Defaults point at the local stack that ``make stack-up`` starts, so nothing
needs setting for development. To use an existing Kafka and Redis::

    export LEADSTREAM_KAFKA_BOOTSTRAP=kafka-1.internal:9092,kafka-2.internal:9092
    export LEADSTREAM_REDIS_URL=redis://redis.internal:6379/0
    export LEADSTREAM_REDIS_PASSWORD=...        # kept out of logs and reprs

``python -m stream_app settings`` prints the effective values (secrets masked).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.base import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from schemas.transitions import STAGES

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Connection, topic, store and serving settings (env prefix ``LEADSTREAM_``)."""

    model_config = SettingsConfigDict(
        env_prefix="LEADSTREAM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- Kafka -------------------------------------------------------------
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092",
        description="LEADSTREAM_KAFKA_BOOTSTRAP: comma-separated host:port list of brokers.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="LEADSTREAM_KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="LEADSTREAM_KAFKA_SASL_MECHANISM (with SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(None, description="LEADSTREAM_KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="LEADSTREAM_KAFKA_SASL_PASSWORD (secret; never logged)."
    )
    kafka_ssl_cafile: Path | None = Field(
        None, description="LEADSTREAM_KAFKA_SSL_CAFILE: CA bundle for SSL/SASL_SSL."
    )
    topic_prefix: str = Field(
        "",
        description="LEADSTREAM_TOPIC_PREFIX: prepended to every topic name (e.g. 'prod.').",
    )
    input_topics: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description=(
            "LEADSTREAM_INPUT_TOPICS: comma-separated topics the worker reads instead of the "
            "nine native ones, used as given (no prefix), e.g. 'rudder-events'"
        ),
    )
    tracks_path: Path = Field(
        Path(__file__).parent / "ingest" / "segment_tracks.yaml",  # shipped in the package
        description=(
            "LEADSTREAM_TRACKS_PATH: which Segment-spec track names become which native "
            "event (YAML); names it does not list are counted as ignored"
        ),
    )
    topic_partitions: int = Field(
        4, ge=1, description="LEADSTREAM_TOPIC_PARTITIONS: partitions of topics we create."
    )
    replication_factor: int = Field(
        1,
        ge=1,
        description=(
            "LEADSTREAM_REPLICATION_FACTOR: replicas of every topic Leadstream creates (inputs, "
            "repartition, changelogs, outputs); 3 on a real cluster, 1 on the local stack"
        ),
    )
    min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description=(
            "LEADSTREAM_MIN_INSYNC_REPLICAS: min.insync.replicas of those topics (producers use "
            "acks=all); unset: one less than the replication factor, at least 1"
        ),
    )
    app_id: str = Field(
        "leadstream",
        description="LEADSTREAM_APP_ID: Faust app id, consumer group and changelog prefix.",
    )
    session_timeout_seconds: float = Field(
        10.0,
        ge=6,
        le=300,
        description=(
            "LEADSTREAM_SESSION_TIMEOUT_SECONDS: how long the consumer group waits for a "
            "silent (crashed) worker before its partitions move"
        ),
    )
    instance_id: str | None = Field(
        None,
        description=(
            "LEADSTREAM_INSTANCE_ID: static group membership; a worker restarted with the "
            "same id gets its partitions back at once (one id per worker)"
        ),
    )

    # --- Redis -------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="LEADSTREAM_REDIS_URL (no password in it)."
    )
    redis_password: SecretStr | None = Field(
        None, description="LEADSTREAM_REDIS_PASSWORD (secret; never logged)."
    )
    redis_key_prefix: str = Field(
        "ls:", description="LEADSTREAM_REDIS_KEY_PREFIX: prefix of every Redis key we write."
    )

    challenger: str = Field(
        "challenger",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$",
        description=(
            "LEADSTREAM_CHALLENGER: the name of the shadow worker `python -m stream_app "
            "challenger` runs; its app id, topic prefix, Redis key prefix and data directory "
            "are the champion's plus this name, and the API shows its funnel beside the "
            "champion's while its projection holds any lead (docs/outcomes.md)"
        ),
    )

    # --- Scoring and state --------------------------------------------------
    rules_path: Path = Field(
        REPO_ROOT / "rules" / "default.yaml",
        description="LEADSTREAM_RULES_PATH: the scoring rules file (YAML).",
    )
    store: str = Field(
        "rocksdb://",
        description="LEADSTREAM_STORE: Faust table store, 'rocksdb://' or 'memory://' (tests).",
    )
    record_cache_size: int = Field(
        50_000,
        ge=0,
        description=(
            "LEADSTREAM_RECORD_CACHE_SIZE: decoded lead records kept in memory, about 4.3 KB "
            "each (0: none); the worker's RSS grows with it, not with the number of leads"
        ),
    )
    max_clock_skew_seconds: float = Field(
        DEFAULT_MAX_CLOCK_SKEW_SECONDS,
        ge=0,
        description=(
            "LEADSTREAM_MAX_CLOCK_SKEW_SECONDS: how far an event's time may be ahead of the "
            "time its message reached us (the earlier of its Kafka timestamp and the "
            "received_at / receivedAt it carries); a later one is a dead letter "
            "(future_event). Keep it far below the rules' horizon_days: an accepted event "
            "that far ahead makes its lead's real events late"
        ),
    )
    data_dir: Path = Field(
        REPO_ROOT / ".stack" / "worker",
        description="LEADSTREAM_DATA_DIR: where the worker keeps RocksDB tables.",
    )
    rocksdb_write_buffer_mb: int = Field(
        8,
        ge=1,
        description=(
            "LEADSTREAM_ROCKSDB_WRITE_BUFFER_MB: RocksDB memtable size per table partition "
            "(two per partition at most); Faust's default, 64 MB x 3, holds a partition's "
            "whole state in memory until it passes 64 MB"
        ),
    )
    rocksdb_block_cache_mb: int = Field(
        16,
        ge=1,
        description=(
            "LEADSTREAM_ROCKSDB_BLOCK_CACHE_MB: RocksDB read cache per table partition "
            "(Faust's default is 2 GiB each)"
        ),
    )
    changelog_segment_mb: int = Field(
        64,
        ge=1,
        description=(
            "LEADSTREAM_CHANGELOG_SEGMENT_MB: segment size of the table changelog topics "
            "we create; the broker compacts only closed segments, so this bounds how much "
            "superseded history a restore from the changelog replays"
        ),
    )
    changelog_compaction_lag_hours: float = Field(
        24,
        gt=0,
        le=24 * 30,
        description=(
            "LEADSTREAM_CHANGELOG_COMPACTION_LAG_HOURS: segment.ms and max.compaction.lag.ms "
            "of the table changelog topics we create: a record's superseded values (an "
            "erased person's included) are compacted away within about this long, once a "
            "later write closes their segment (docs/guarantees.md)"
        ),
    )
    dead_letter_retention_days: float = Field(
        7,
        gt=0,
        description=(
            "LEADSTREAM_DEAD_LETTER_RETENTION_DAYS: retention.ms of the dead-letter topic "
            "when the worker creates it; a dead letter's raw bytes are redacted, but what "
            "cannot be recognised as personal stays this long"
        ),
    )

    batch_max_events: int = Field(
        500,
        ge=1,
        description=(
            "LEADSTREAM_BATCH_MAX_EVENTS: most messages the worker scores as one batch "
            "(one record write per lead per batch, transitions' acks awaited together)"
        ),
    )
    batch_max_seconds: float = Field(
        0.05,
        gt=0,
        description=(
            "LEADSTREAM_BATCH_MAX_SECONDS: longest a batch waits to fill; at low rates "
            "this is what a batch adds to the event -> transition latency"
        ),
    )

    batches_in_flight: int = Field(
        2,
        ge=1,
        description=(
            "LEADSTREAM_BATCHES_IN_FLIGHT: scored batches that may wait for their acks and "
            "writes while the worker scores the next (their records are read from memory)"
        ),
    )

    projector: Literal["child", "none"] = Field(
        "child",
        description=(
            "LEADSTREAM_PROJECTOR: 'child': the worker runs the Redis projection as a child "
            "process; 'none': run `python -m stream_app projector` yourself"
        ),
    )

    sweep_interval_seconds: float = Field(
        30.0, gt=0, description="LEADSTREAM_SWEEP_INTERVAL_SECONDS: how often decay is checked"
    )
    stall_check_seconds: float = Field(
        5.0,
        gt=0,
        description=(
            "LEADSTREAM_STALL_CHECK_SECONDS: how often the worker checks that no partition "
            "with records waiting goes unprocessed (idle at two checks in a row: a WARNING, and "
            "a seek back to its committed offset)"
        ),
    )
    sweep_rescan_seconds: float = Field(
        300.0,
        gt=0,
        description="LEADSTREAM_SWEEP_RESCAN_SECONDS: how often the due index is rebuilt",
    )

    # --- The notifier (python -m stream_app notify) -------------------------------
    notify_kind: Literal["slack", "teams", "webhook"] = Field(
        "slack",
        description=(
            "LEADSTREAM_NOTIFY_KIND: 'slack' (incoming webhook, Block Kit), 'teams' (workflow "
            "webhook, Adaptive Card) or 'webhook' (the transition JSON, one POST each)"
        ),
    )
    notify_url: SecretStr | None = Field(
        None, description="LEADSTREAM_NOTIFY_URL: the webhook URL (secret; never logged)."
    )
    notify_stages: Annotated[tuple[str, ...], NoDecode] = Field(
        ("mql", "sql", "pql"),
        description="LEADSTREAM_NOTIFY_STAGES: comma-separated stages to announce, or 'all'",
    )
    notify_link_template: str | None = Field(
        None,
        description=(
            "LEADSTREAM_NOTIFY_LINK_TEMPLATE: a CRM link per lead, with {lead_id} and "
            "{account_id}, e.g. 'https://crm.example.com/leads/{lead_id}'"
        ),
    )
    notify_max_per_second: float = Field(
        1.0,
        gt=0,
        le=100,
        description=(
            "LEADSTREAM_NOTIFY_MAX_PER_SECOND: most posts per second (Slack allows about "
            "one); a burst in between is posted as one digest"
        ),
    )
    notify_digest_max: int = Field(
        20,
        ge=1,
        le=40,
        description="LEADSTREAM_NOTIFY_DIGEST_MAX: most transitions in one digest message",
    )
    notify_start: Literal["earliest", "latest"] = Field(
        "earliest",
        description=(
            "LEADSTREAM_NOTIFY_START: where a notifier group with no committed offsets "
            "begins: 'earliest' (every transition on the topic) or 'latest' (only new ones)"
        ),
    )
    notify_dir: Path = Field(
        REPO_ROOT / ".stack" / "notify",
        description=(
            "LEADSTREAM_NOTIFY_DIR: where the notifier keeps the ids it posted (dedup "
            "across restarts)"
        ),
    )

    # --- The collector (python -m stream_app collect) -----------------------------
    collect_host: str = Field("127.0.0.1", description="LEADSTREAM_COLLECT_HOST")
    collect_port: int = Field(8088, ge=1, le=65535, description="LEADSTREAM_COLLECT_PORT")
    collect_write_keys: SecretStr | None = Field(
        None,
        description=(
            "LEADSTREAM_COLLECT_WRITE_KEYS: comma-separated write keys the collector accepts "
            "(secret; never logged); required to run it"
        ),
    )
    collect_topic: str | None = Field(
        None,
        description=(
            "LEADSTREAM_COLLECT_TOPIC: where the collector writes (default: the first input "
            "topic, e.g. the first of LEADSTREAM_INPUT_TOPICS)"
        ),
    )
    collect_max_body_bytes: int = Field(
        512 * 1024,
        ge=1024,
        description="LEADSTREAM_COLLECT_MAX_BODY_BYTES: larger request bodies get a 413",
    )
    collect_cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        ("*",),
        description=(
            "LEADSTREAM_COLLECT_CORS_ORIGINS: comma-separated origins whose pages may post "
            "to the tracking routes, e.g. 'https://www.example.com'; '*': any page (never "
            "with credentials: the write key is no cookie); 'null' (sandboxed frames, "
            "file:// pages) only when listed. A request from another origin gets a 403"
        ),
    )

    # --- Serving and logs ----------------------------------------------------
    worker_host: str = Field(
        "127.0.0.1",
        description="LEADSTREAM_WORKER_HOST: where the worker serves /health, /ready, /metrics",
    )
    worker_port: int = Field(
        8081,
        ge=0,
        le=65535,
        description="LEADSTREAM_WORKER_PORT: the worker's health and metrics port (0: any free)",
    )
    http_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description=(
            "LEADSTREAM_HTTP_HEADER_TIMEOUT_SECONDS: the collector, the API and the worker's "
            "HTTP close a connection that has not sent a whole request line and headers this "
            "long after it opened or got its last answer (also how long an idle keep-alive "
            "connection stays open)"
        ),
    )
    http_body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description=(
            "LEADSTREAM_HTTP_BODY_TIMEOUT_SECONDS: longest a request's body may take to come "
            "in (the collector answers 408 past it; a body no handler reads is drained this "
            "long after the answer, then the connection closed)"
        ),
    )
    api_host: str = Field("127.0.0.1", description="LEADSTREAM_API_HOST")
    api_port: int = Field(8080, ge=1, le=65535, description="LEADSTREAM_API_PORT")
    api_token: SecretStr | None = Field(
        None,
        description="LEADSTREAM_API_TOKEN: bearer token the API requires (health/ready open)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="LEADSTREAM_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="LEADSTREAM_LOG_FORMAT: 'json' for log shippers."
    )

    @model_validator(mode="after")
    def _replicas_fit(self) -> Settings:
        if self.min_insync_replicas is not None and (
            self.min_insync_replicas > self.replication_factor
        ):
            raise ValueError(
                f"LEADSTREAM_MIN_INSYNC_REPLICAS={self.min_insync_replicas} is more than "
                f"LEADSTREAM_REPLICATION_FACTOR={self.replication_factor}: no write could "
                "ever be acknowledged"
            )
        return self

    @property
    def min_insync(self) -> int:
        """The ``min.insync.replicas`` every created topic gets."""
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return max(1, self.replication_factor - 1)

    def topic_configs(self) -> dict[str, str]:
        """Configs every topic Leadstream creates gets (beside its own, e.g. compaction)."""
        return {"min.insync.replicas": str(self.min_insync)}

    @field_validator("input_topics", "notify_stages", "collect_cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @field_validator("notify_stages")
    @classmethod
    def _known_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value == ("all",):
            return STAGES
        unknown = [s for s in value if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; stages: {', '.join(STAGES)}")
        return value

    @property
    def challenger_key_prefix(self) -> str:
        """Where the challenger's projection lives in Redis (beside the champion's)."""
        return f"{self.redis_key_prefix}{self.challenger}:"

    def public_view(self) -> dict[str, object]:
        """The settings as a dict that is safe to print or log (secrets masked)."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "**********"
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out
