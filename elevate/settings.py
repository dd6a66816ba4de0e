"""Runtime settings: one frozen object read from the environment once per process.

Every service can be given by URL; when a URL is left unset the local launcher
(`elevate services up`) starts that service itself under `ELEVATE_HOME`.
"""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT_SECRET = "development-only-secret-change-me"

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    """All configuration of every role, validated at start-up."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_file=None)

    environment: Environment = Field("development", alias="ELEVATE_ENV")
    home: Path = Field(PROJECT_ROOT / ".elevate", alias="ELEVATE_HOME")

    # Services. Empty means "started locally by the launcher".
    kafka_bootstrap_servers: str = Field("", alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str = Field("", alias="DATABASE_URL")
    clickhouse_url: str = Field("", alias="CLICKHOUSE_URL")

    # Ports of the locally launched services.
    local_kafka_port: int = Field(19092, alias="ELEVATE_KAFKA_PORT")
    local_kafka_controller_port: int = Field(19093, alias="ELEVATE_KAFKA_CONTROLLER_PORT")
    local_postgres_port: int = Field(55432, alias="ELEVATE_POSTGRES_PORT")
    kafka_version: str = Field("3.9.1", alias="ELEVATE_KAFKA_VERSION")

    # Role endpoints.
    ingest_host: str = Field("127.0.0.1", alias="INGEST_HOST")
    ingest_port: int = Field(8001, alias="INGEST_PORT")
    # Ingest processes sharing the port (SO_REUSEPORT); one core each at most.
    ingest_workers: int = Field(1, ge=1, alias="INGEST_WORKERS")
    api_host: str = Field("127.0.0.1", alias="API_HOST")
    api_port: int = Field(8000, alias="API_PORT")
    # /metrics, /healthz and /readyz of every process; 0 turns the server off. `run all`
    # gives its child processes consecutive ports from here.
    metrics_host: str = Field("127.0.0.1", alias="METRICS_HOST")
    metrics_port: int = Field(9100, ge=0, alias="METRICS_PORT")

    # Secrets.
    secret_key: SecretStr = Field(SecretStr(DEVELOPMENT_SECRET), alias="SECRET_KEY")
    admin_token_minutes: int = Field(30, alias="ADMIN_TOKEN_MINUTES")

    # Contest rules.
    grace_seconds: int = Field(30, ge=0, alias="GRACE_SECONDS")
    # Candidates' pages beat this often; this many missed beats is a disconnection.
    heartbeat_interval_seconds: float = Field(5.0, gt=0, alias="HEARTBEAT_INTERVAL_SECONDS")
    heartbeats_missed_for_disconnect: int = Field(3, ge=1, alias="HEARTBEATS_MISSED")
    max_answer_bytes: int = Field(64 * 1024, gt=0, alias="MAX_ANSWER_BYTES")
    max_body_bytes: int = Field(256 * 1024, gt=0, alias="MAX_BODY_BYTES")
    # Requests a second (and burst) per attempt and per client address; 0 turns a limit
    # off. An autosave every few seconds plus heartbeats stays far below the attempt
    # limit; the address limit is high because a test centre shares one address.
    rate_per_attempt: float = Field(5.0, ge=0, alias="RATE_LIMIT_PER_ATTEMPT")
    burst_per_attempt: float = Field(30.0, ge=1, alias="RATE_BURST_PER_ATTEMPT")
    rate_per_ip: float = Field(500.0, ge=0, alias="RATE_LIMIT_PER_IP")
    burst_per_ip: float = Field(2000.0, ge=1, alias="RATE_BURST_PER_IP")

    # Kafka producer tuning (ingest hot path).
    producer_linger_ms: int = Field(5, ge=0, alias="PRODUCER_LINGER_MS")
    producer_compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = Field(
        "gzip", alias="PRODUCER_COMPRESSION"
    )

    # Sinks.
    sink_batch_size: int = Field(500, gt=0, alias="SINK_BATCH_SIZE")
    sink_flush_seconds: float = Field(0.5, gt=0, alias="SINK_FLUSH_SECONDS")

    # Streams.
    # Static group membership: a worker restarted under the same id takes its partitions
    # back without a rebalance. Give each worker its own stable id (a StatefulSet's pod
    # name); empty means dynamic membership.
    streams_instance_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-streams-0", alias="STREAMS_INSTANCE_ID"
    )
    topic_prefix: str = Field("elevate.", alias="TOPIC_PREFIX")

    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")

    @model_validator(mode="after")
    def _refuse_placeholder_secret_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key.get_secret_value() == DEVELOPMENT_SECRET
            or len(self.secret_key.get_secret_value()) < 32
        ):
            raise ValueError(
                "SECRET_KEY must be set to a random value of 32+ characters in production"
            )
        return self

    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap servers: the given URL or the local broker."""
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.local_kafka_port}"

    @property
    def postgres_dsn(self) -> str:
        """Postgres connection string: the given URL or the local private cluster."""
        return self.database_url or (
            f"postgresql://elevate@127.0.0.1:{self.local_postgres_port}/elevate"
        )

    @property
    def clickhouse_dsn(self) -> str:
        """ClickHouse target: a server URL, or the embedded chDB engine's data folder."""
        return self.clickhouse_url or f"chdb://{(self.home / 'clickhouse').resolve()}"

    @property
    def clickhouse_is_embedded(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    # Admin API. A refresh token lives a working day: an admin signs in once a day while
    # a stolen access token is still useless after ADMIN_TOKEN_MINUTES.
    admin_refresh_token_hours: int = Field(12, gt=0, alias="ADMIN_REFRESH_TOKEN_HOURS")
    # The most extra time all extensions of one attempt may add up to.
    max_time_extension_minutes: int = Field(30, ge=0, alias="MAX_TIME_EXTENSION_MINUTES")
    # Bulk question uploads larger than this are refused with 413.
    max_upload_bytes: int = Field(5 * 1024 * 1024, gt=0, alias="MAX_UPLOAD_BYTES")

    # Code execution: on Judge0 when JUDGE0_URL is set, else in the local bubblewrap sandbox.
    judge0_url: str = Field("", alias="JUDGE0_URL")
    judge0_auth_header: str = Field("X-Auth-Token", alias="JUDGE0_AUTH_HEADER")
    judge0_auth_token: SecretStr = Field(SecretStr(""), alias="JUDGE0_AUTH_TOKEN")
    # Tries of each Judge0 request (and of a run ending in Internal Error) before IE.
    judge0_max_attempts: int = Field(5, ge=1, alias="JUDGE0_MAX_ATTEMPTS")
    judge0_timeout_seconds: float = Field(300.0, gt=0, alias="JUDGE0_TIMEOUT_SECONDS")
    # Code run requests a stream worker takes at once (a slow one does not block the rest).
    code_run_concurrency: int = Field(4, ge=1, le=64, alias="CODE_RUN_CONCURRENCY")
    # Sandboxed processes at a time across all submissions; unset means one per CPU.
    execution_workers: int | None = Field(None, ge=1, alias="EXECUTION_WORKERS")
    # The user sandboxes run as when this process is root: the kernel does not enforce
    # the process limit for root, so a fork bomb would not be contained.
    sandbox_uid: int = Field(65534, ge=1, alias="SANDBOX_UID")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
