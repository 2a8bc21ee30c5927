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

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.base import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from schemas.events import SalesOutcome
from schemas.transitions import STAGES

REPO_ROOT = Path(__file__).resolve().parent.parent
SALES_OUTCOMES: tuple[str, ...] = SalesOutcome.__args__  # type: ignore[attr-defined]


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
    table_standby_replicas: int = Field(
        0,
        ge=0,
        description=(
            "LEADSTREAM_TABLE_STANDBY_REPLICAS: Faust's table_standby_replicas: how many "
            "other workers keep a copy of each records partition, fed from its changelog, "
            "so a failover finds the state on disk instead of restoring it (needs that many "
            "more workers; each copy costs its worker CPU per changelog record)"
        ),
    )
    bulk_restore: bool = Field(
        True,
        description=(
            "LEADSTREAM_BULK_RESTORE: restore the records table from its changelog in large "
            "batches before Faust's recovery (stream_app/worker/restore.py); false: Faust's "
            "own recovery, one message at a time (about a tenth of the speed)"
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

    # --- The CRM sync (python -m stream_app crm-sync) and CRM webhooks (collect) ------
    crm: Literal["hubspot", "salesforce"] | None = Field(
        None,
        description=(
            "LEADSTREAM_CRM: the CRM crm-sync writes to, 'hubspot' or 'salesforce' (its --crm "
            "option wins)"
        ),
    )
    crm_host: str = Field(
        "127.0.0.1", description="LEADSTREAM_CRM_HOST: where crm-sync serves /health, /ready"
    )
    crm_port: int = Field(
        8083,
        ge=0,
        le=65535,
        description="LEADSTREAM_CRM_PORT: crm-sync's health and metrics port (0: any free)",
    )
    crm_batch_max: int = Field(
        100,
        ge=1,
        le=200,
        description=(
            "LEADSTREAM_CRM_BATCH_MAX: most leads in one upsert call (HubSpot takes at most "
            "100, Salesforce 200; the smaller of this and the CRM's limit is used)"
        ),
    )
    crm_batch_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description=(
            "LEADSTREAM_CRM_BATCH_SECONDS: longest crm-sync gathers records before it writes "
            "(what it adds to a change's way into the CRM at low rates)"
        ),
    )
    crm_calls_per_ten_seconds: int = Field(
        100,
        ge=1,
        le=1000,
        description=(
            "LEADSTREAM_CRM_CALLS_PER_TEN_SECONDS: most CRM calls in any 10 seconds (HubSpot "
            "private apps: 100 on Free and Starter, 190 on Professional and Enterprise)"
        ),
    )
    crm_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description=(
            "LEADSTREAM_CRM_TIMEOUT_SECONDS: a CRM call without an answer this long is "
            "retried (with backoff, never skipped)"
        ),
    )
    crm_start: Literal["earliest", "latest"] = Field(
        "earliest",
        description=(
            "LEADSTREAM_CRM_START: where a crm-sync group with no committed offsets begins: "
            "'earliest' (every lead's history) or 'latest' (only new changes)"
        ),
    )
    hubspot_token: SecretStr | None = Field(
        None,
        description=(
            "LEADSTREAM_HUBSPOT_TOKEN: the private app's access token (secret; never logged)"
        ),
    )
    hubspot_base_url: str = Field(
        "https://api.hubapi.com",
        description=(
            "LEADSTREAM_HUBSPOT_BASE_URL: HubSpot's API; a local stand-in's URL in tests "
            "and the demo"
        ),
    )
    hubspot_id_property: str = Field(
        "leadstream_lead_id",
        description=(
            "LEADSTREAM_HUBSPOT_ID_PROPERTY: the unique contact property crm-sync upserts "
            "by, whose value is the lead id: leadstream_lead_id (created by --setup), "
            "'email' when your lead ids are e-mail addresses, or a unique property of yours"
        ),
    )
    hubspot_lifecycle: Annotated[dict[str, str], NoDecode] = Field(
        {
            "lead": "lead",
            "mql": "marketingqualifiedlead",
            "pql": "marketingqualifiedlead",
            "sql": "salesqualifiedlead",
            "recycled": "lead",
        },
        description=(
            "LEADSTREAM_HUBSPOT_LIFECYCLE: stage:lifecyclestage pairs written on a "
            "transition; a stage not listed leaves lifecyclestage alone"
        ),
    )
    hubspot_lifecycle_backward: bool = Field(
        False,
        description=(
            "LEADSTREAM_HUBSPOT_LIFECYCLE_BACKWARD: move lifecyclestage back (recycled: "
            "salesqualifiedlead -> lead) by clearing it first, as HubSpot documents; off: a "
            "move back is not written and hs_lead_status and leadstream_stage tell it"
        ),
    )
    hubspot_lead_status: Annotated[dict[str, str], NoDecode] = Field(
        {"recycled": "BAD_TIMING"},
        description=(
            "LEADSTREAM_HUBSPOT_LEAD_STATUS: stage:hs_lead_status pairs written on a "
            "transition (none for stages not listed)"
        ),
    )
    hubspot_app_secret: SecretStr | None = Field(
        None,
        description=(
            "LEADSTREAM_HUBSPOT_APP_SECRET: the app's client secret that signs its webhooks "
            "(X-HubSpot-Signature-v3); required for /v1/webhooks/hubspot (secret)"
        ),
    )
    hubspot_contact_outcomes: Annotated[dict[str, str], NoDecode] = Field(
        {
            "lifecyclestage=opportunity": "opportunity",
            "lifecyclestage=customer": "won",
            "hs_lead_status=IN_PROGRESS": "accepted",
            "hs_lead_status=CONNECTED": "accepted",
            "hs_lead_status=OPEN_DEAL": "opportunity",
            "hs_lead_status=UNQUALIFIED": "rejected",
        },
        description=(
            "LEADSTREAM_HUBSPOT_CONTACT_OUTCOMES: property=value:outcome pairs; a contact "
            "property change webhook with a listed value becomes that sales_feedback"
        ),
    )
    hubspot_deal_outcomes: Annotated[dict[str, str], NoDecode] = Field(
        {"closedwon": "won", "closedlost": "lost"},
        description=(
            "LEADSTREAM_HUBSPOT_DEAL_OUTCOMES: dealstage:outcome pairs (add your pipelines' "
            "stages, e.g. 'appointmentscheduled:opportunity'); the outcome goes to every "
            "contact of the deal"
        ),
    )
    salesforce_domain: str | None = Field(
        None,
        description=(
            "LEADSTREAM_SALESFORCE_DOMAIN: your My Domain without .salesforce.com, e.g. "
            "'acme.my' (the client-credentials flow needs it)"
        ),
    )
    salesforce_client_id: str | None = Field(
        None, description="LEADSTREAM_SALESFORCE_CLIENT_ID: the connected app's consumer key"
    )
    salesforce_client_secret: SecretStr | None = Field(
        None,
        description=(
            "LEADSTREAM_SALESFORCE_CLIENT_SECRET: its consumer secret, for the OAuth 2.0 "
            "client-credentials flow (secret)"
        ),
    )
    salesforce_username: str | None = Field(
        None,
        description=(
            "LEADSTREAM_SALESFORCE_USERNAME: the integration user, for the JWT bearer flow "
            "(with LEADSTREAM_SALESFORCE_PRIVATE_KEY_PATH instead of the client secret)"
        ),
    )
    salesforce_private_key_path: Path | None = Field(
        None,
        description=(
            "LEADSTREAM_SALESFORCE_PRIVATE_KEY_PATH: the PEM key whose certificate the "
            "connected app holds (JWT bearer flow)"
        ),
    )
    salesforce_base_url: str | None = Field(
        None,
        description=(
            "LEADSTREAM_SALESFORCE_BASE_URL: send every Salesforce call here instead (a "
            "local stand-in in tests and the demo); unset in production"
        ),
    )
    salesforce_external_id_field: str = Field(
        "Leadstream_Lead_Id__c",
        description=(
            "LEADSTREAM_SALESFORCE_EXTERNAL_ID_FIELD: the Lead's External ID field (unique) "
            "that holds the lead id and that crm-sync upserts by"
        ),
    )
    salesforce_status: Annotated[dict[str, str], NoDecode] = Field(
        {
            "lead": "Open - Not Contacted",
            "mql": "Open - Not Contacted",
            "pql": "Open - Not Contacted",
            "sql": "Open - Not Contacted",
            "recycled": "Closed - Not Converted",
            "disqualified": "Closed - Not Converted",
        },
        description=(
            "LEADSTREAM_SALESFORCE_STATUS: stage:Status pairs written on a transition "
            "(values of your Lead Status picklist; none for stages not listed)"
        ),
    )
    salesforce_outbound_secret: SecretStr | None = Field(
        None,
        description=(
            "LEADSTREAM_SALESFORCE_OUTBOUND_SECRET: the secret last segment of the outbound "
            "message URL, /v1/webhooks/salesforce/<secret> (secret)"
        ),
    )
    salesforce_org_ids: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description=(
            "LEADSTREAM_SALESFORCE_ORG_IDS: organisation ids (18 characters) whose outbound "
            "messages are accepted; with or instead of the secret"
        ),
    )
    salesforce_outcomes: Annotated[dict[str, str], NoDecode] = Field(
        {
            "Lead.Status=Working - Contacted": "accepted",
            "Lead.Status=Closed - Converted": "opportunity",
            "Opportunity.StageName=Closed Won": "won",
            "Opportunity.StageName=Closed Lost": "lost",
        },
        description=(
            "LEADSTREAM_SALESFORCE_OUTCOMES: Object.Field=value:outcome pairs; an outbound "
            "message whose record has a listed value becomes that sales_feedback"
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

    @field_validator(
        "hubspot_lifecycle",
        "hubspot_lead_status",
        "hubspot_contact_outcomes",
        "hubspot_deal_outcomes",
        "salesforce_status",
        "salesforce_outcomes",
        mode="before",
    )
    @classmethod
    def _pairs(cls, value: object) -> object:
        """``a:b,c:d`` (the last colon splits: a Salesforce value may hold one), or JSON."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                return json.loads(text)
            pairs = {}
            for item in (i.strip() for i in text.split(",")):
                if not item:
                    continue
                key, colon, val = item.rpartition(":")
                if not colon or not key.strip() or not val.strip():
                    raise ValueError(f"{item!r} is not a key:value pair")
                pairs[key.strip()] = val.strip()
            return pairs
        return value

    @field_validator("hubspot_lifecycle", "hubspot_lead_status", "salesforce_status")
    @classmethod
    def _stage_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = [s for s in value if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; stages: {', '.join(STAGES)}")
        return value

    @field_validator("hubspot_contact_outcomes", "hubspot_deal_outcomes", "salesforce_outcomes")
    @classmethod
    def _outcomes(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {k: v for k, v in value.items() if v not in SALES_OUTCOMES}
        if bad:
            raise ValueError(f"{bad}: an outcome is one of {', '.join(SALES_OUTCOMES)}")
        return value

    @model_validator(mode="after")
    def _no_echo(self) -> Settings:
        """A value crm-sync writes must not come back as an outcome: HubSpot and Salesforce
        send a webhook for Leadstream's own write, which would then move the lead."""
        echoes = [
            f"{name}={value}"
            for name, written in (
                ("lifecyclestage", self.hubspot_lifecycle),
                ("hs_lead_status", self.hubspot_lead_status),
            )
            for value in written.values()
            if f"{name}={value}" in self.hubspot_contact_outcomes
        ] + [
            f"Lead.Status={value}"
            for value in self.salesforce_status.values()
            if f"Lead.Status={value}" in self.salesforce_outcomes
        ]
        if echoes:
            raise ValueError(
                f"{', '.join(sorted(set(echoes)))}: written by crm-sync and read back as an "
                "outcome by the webhooks; a lead would move on its own write (take it out of "
                "one of the two settings)"
            )
        return self

    @field_validator(
        "input_topics",
        "notify_stages",
        "collect_cors_origins",
        "salesforce_org_ids",
        mode="before",
    )
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
