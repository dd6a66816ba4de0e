"""Local services for development, tests and CI: Kafka, Postgres and ClickHouse.

Every service given by URL in the settings is only checked; the others are
started here under `settings.home`, idempotently: `up()` on running services
returns in well under a second. Progress is logged on the `elevate.services`
logger; failures raise `ServiceError` naming the log to read.
"""

from __future__ import annotations

import fcntl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from elevate.services import kafka, postgres
from elevate.services.prerequisites import (
    ServiceError,
    host_port,
    log,
    port_open,
    redact,
)
from elevate.services.prerequisites import (
    ensure_prerequisites as _ensure_prerequisites,
)
from elevate.settings import Settings

__all__ = ["ServiceError", "down", "ensure_prerequisites", "status", "up"]


def ensure_prerequisites(settings: Settings) -> None:
    """Install (as root) or demand (otherwise) java, mvn, the Postgres server and bwrap.

    Tools only needed for services given by URL are skipped.
    """
    _ensure_prerequisites(settings)


def up(settings: Settings) -> None:
    """Start every local service that is not running, and check the external ones.

    Safe to call repeatedly: running services are left as they are.
    """
    started = time.monotonic()
    with _exclusive(settings):
        postgres.up(settings)
        kafka.up(settings)
        _clickhouse_up(settings)
    log.info("services: up in %.1fs", time.monotonic() - started)


def down(settings: Settings) -> None:
    """Stop the local services (external ones are left alone); data is kept."""
    with _exclusive(settings):
        kafka.down(settings)
        postgres.down(settings)


@contextmanager
def _exclusive(settings: Settings) -> Iterator[None]:
    """Serialise up/down across processes on this machine.

    A test run and a CLI started together must not both see "stopped" and
    launch two brokers.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    with (settings.home / ".services.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def status(settings: Settings) -> dict[str, str]:
    """Each service's state: "running at ...", "stopped", "external ... (answering)", ..."""
    return {
        "kafka": kafka.status(settings),
        "postgres": postgres.status(settings),
        "clickhouse": _clickhouse_status(settings),
    }


# ClickHouse runs embedded (chDB) unless CLICKHOUSE_URL names a server, so there is
# nothing to start: only the data folder, or a reachable server.


def _clickhouse_path(settings: Settings) -> Path:
    return Path(settings.clickhouse_dsn.removeprefix("chdb://"))


def _clickhouse_answers(url: str, timeout: float = 5.0) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        # /ping needs no credentials, so they are left out of the probe.
        netloc = parts.hostname or "127.0.0.1"
        if parts.port is not None:
            netloc += f":{parts.port}"
        ping = urlunsplit((parts.scheme, netloc, "/ping", "", ""))
        try:
            with urllib.request.urlopen(ping, timeout=timeout) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    host, port = host_port(url, 9000)
    return port_open(host, port, timeout=timeout)


def _clickhouse_up(settings: Settings) -> None:
    if settings.clickhouse_is_embedded:
        path = _clickhouse_path(settings)
        path.mkdir(parents=True, exist_ok=True)
        log.info("clickhouse: embedded chDB at %s", path)
        return
    shown = redact(settings.clickhouse_url)
    if not _clickhouse_answers(settings.clickhouse_url):
        raise ServiceError(f"clickhouse: external server {shown} (CLICKHOUSE_URL) does not answer")
    log.info("clickhouse: external server %s answers", shown)


def _clickhouse_status(settings: Settings) -> str:
    if settings.clickhouse_is_embedded:
        return f"embedded chDB at {_clickhouse_path(settings)}"
    state = "answering" if _clickhouse_answers(settings.clickhouse_url) else "NOT answering"
    return f"external {redact(settings.clickhouse_url)} ({state})"
