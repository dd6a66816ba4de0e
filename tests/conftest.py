"""Shared fixtures: the real services, started once per test session, and factories
that give each test run its own database, topic prefix and ClickHouse folder.

Services come from the environment when given (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL,
CLICKHOUSE_URL), otherwise the local launcher starts them, as `elevate services up`.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from elevate import services
from elevate.settings import Settings
from sinks.migrations import apply_migrations

TEST_SECRET = "test-secret-" + "x" * 32
TEST_GRACE_SECONDS = 2


@pytest.fixture(scope="session")
def service_settings() -> Settings:
    """Settings whose Kafka and Postgres are up (started here when not given by URL)."""
    settings = Settings()
    services.ensure_prerequisites(settings)
    services.up(settings)
    return settings


@pytest.fixture(scope="session")
def fresh_database(service_settings: Settings) -> Iterator[str]:
    """The DSN of a database created (and migrated) for this session, dropped after it."""
    database = f"elevate_test_{secrets.token_hex(6)}"
    cluster = service_settings.postgres_dsn
    with psycopg.connect(cluster, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    dsn = make_conninfo(cluster, dbname=database)
    apply_migrations(dsn)
    yield dsn
    with psycopg.connect(cluster, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_range(count: int) -> int:
    """The first of `count` consecutive ports that are free now."""
    for _ in range(50):
        first = free_port()
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no run of free ports found")


def isolated_env(service_settings: Settings, dsn: str, home: Path) -> dict[str, str]:
    """Environment for processes of one isolated pipeline on the shared services."""
    return {
        **os.environ,
        "ELEVATE_ENV": "test",
        "ELEVATE_HOME": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": service_settings.kafka_bootstrap,
        "DATABASE_URL": dsn,
        "TOPIC_PREFIX": f"test-{secrets.token_hex(5)}.",
        "INGEST_PORT": str(free_port()),
        "API_PORT": str(free_port()),
        "SECRET_KEY": TEST_SECRET,
        "GRACE_SECONDS": str(TEST_GRACE_SECONDS),
        "SINK_FLUSH_SECONDS": "0.2",
        "HEARTBEAT_INTERVAL_SECONDS": "1",
        # `run all` numbers its processes' metrics ports from here.
        "METRICS_PORT": str(free_port_range(6)),
    }


@dataclass
class RunningPipeline:
    """Every role running in child processes against this session's database."""

    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def settings(self) -> Settings:
        return Settings.model_validate(self.env)

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.env['INGEST_PORT']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['API_PORT']}"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _wait_for(url: str, pipeline: RunningPipeline, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pipeline.process.poll() is not None:
            pytest.fail(f"pipeline exited:\n{pipeline.log_tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not ready:\n{pipeline.log_tail()}")


@pytest.fixture(scope="session")
def pipeline(
    service_settings: Settings, fresh_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPipeline]:
    home = tmp_path_factory.mktemp("pipeline-home")
    env = isolated_env(service_settings, fresh_database, home)
    log_path = home / "pipeline.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "elevate", "run", "all"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = RunningPipeline(env, process, log_path)
    try:
        _wait_for(f"{running.ingest_url}/readyz", running)
        _wait_for(f"{running.api_url}/readyz", running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
