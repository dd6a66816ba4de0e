"""Tools the local launcher needs, how to find them, and the helpers shared by the launchers.

This is the lowest layer of `elevate.services`: `kafka` and `postgres` import
`ServiceError`, the logger and the small process/file helpers from here.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from elevate.settings import Settings

log = logging.getLogger("elevate.services")

T = TypeVar("T")

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
POSTGRES_LIB = Path("/usr/lib/postgresql")


class ServiceError(RuntimeError):
    """A service could not be checked, started or stopped; the message says where to look."""


# --------------------------------------------------------------------------- helpers


def tail(path: Path, lines: int = 40, since: int = 0) -> str:
    """The last `lines` lines of a log file from byte offset `since` ("" if unreadable)."""
    try:
        with path.open("rb") as f:
            f.seek(since)
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def with_tail(message: str, path: Path, since: int = 0) -> str:
    """`message` followed by the end of the log at `path`, indented so it reads as a quote."""
    end = tail(path, since=since)
    if not end:
        return message
    quoted = "\n".join("    " + line for line in end.splitlines())
    return f"{message}\n  last lines of {path}:\n{quoted}"


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """Host and port of `host:port` or `scheme://[user@]host:port/...`."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def redact(url: str) -> str:
    """`url` with any password replaced, so it can go into a log line or an error."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    `up()` may be called from inside a running event loop (a test fixture, an
    async CLI), where `asyncio.run` is refused; there it runs on a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    # The state letter follows the parenthesised command name, which may hold spaces.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def pid_cmdline(pid: int) -> str:
    """The command line of `pid` with arguments joined by spaces ("" if unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- tools


def is_root() -> bool:
    """Whether this process runs as root (and so may apt-get install and switch user)."""
    return os.geteuid() == 0


def _has_server_tools(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()


def postgres_bindir() -> Path | None:
    """The folder with initdb/pg_ctl/postgres, or None when the server is not installed.

    `pg_config --bindir` comes first, but libpq-dev alone ships a pg_config
    whose folder lacks the server, so every candidate is checked for initdb.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass

    def version_key(p: str) -> float:
        m = re.search(r"/(\d+(?:\.\d+)?)/bin$", p)
        return float(m.group(1)) if m else 0.0

    candidates += [
        Path(p) for p in sorted(glob.glob(f"{POSTGRES_LIB}/*/bin"), key=version_key, reverse=True)
    ]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    return next((c for c in candidates if _has_server_tools(c)), None)


@dataclass(frozen=True)
class Requirement:
    """One tool the launcher needs, and the Debian package that provides it."""

    tool: str
    purpose: str
    apt_package: str
    present: Callable[[], bool]


def _which(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


def requirements(settings: Settings) -> list[Requirement]:
    """The tools needed for the services this configuration starts locally."""
    reqs: list[Requirement] = []
    if not settings.kafka_bootstrap_servers:
        reqs.append(
            Requirement(
                "java", "runs the local Kafka broker", "openjdk-17-jre-headless", _which("java")
            )
        )
        reqs.append(Requirement("mvn", "fetches the Kafka jars", "maven", _which("mvn")))
    if not settings.database_url:
        reqs.append(
            Requirement(
                "initdb/pg_ctl",
                "runs the local Postgres",
                "postgresql-15",
                lambda: postgres_bindir() is not None,
            )
        )
    reqs.append(Requirement("bwrap", "sandboxes untrusted code", "bubblewrap", _which("bwrap")))
    if not settings.judge0_url:  # the local runner compiles and runs candidates' code
        reqs += [
            Requirement("g++", "compiles C++ submissions", "g++", _which("g++")),
            Requirement("cc", "builds the sandbox's process reaper", "gcc", _which("cc")),
            Requirement(
                "javac", "compiles Java submissions", "openjdk-17-jdk-headless", _which("javac")
            ),
        ]
    return reqs


def missing(settings: Settings) -> list[Requirement]:
    """The requirements whose tool is not found."""
    return [r for r in requirements(settings) if not r.present()]


def apt_install_command(packages: list[str]) -> list[str]:
    """The apt-get command line that installs `packages` without recommended extras."""
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


_apt_updated = False


def _apt(args: list[str]) -> None:
    log.info("prerequisites: running %s", " ".join(args))
    result = subprocess.run(
        args,
        env={**os.environ, **APT_ENV},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise ServiceError(
            f"prerequisites: `{' '.join(args)}` failed ({result.returncode}):\n{output}"
        )


def _apt_update_once() -> None:
    global _apt_updated
    if not _apt_updated:
        _apt(["apt-get", "update"])
        _apt_updated = True


def _apt_has(package: str) -> bool:
    result = subprocess.run(
        ["apt-cache", "show", package], capture_output=True, check=False, stdin=subprocess.DEVNULL
    )
    return result.returncode == 0 and bool(result.stdout.strip())


def ensure_prerequisites(settings: Settings) -> None:
    """Make sure java, mvn, the Postgres server and bwrap are installed.

    As root, missing ones are installed with apt-get; otherwise a ServiceError
    names them with the command to run. Tools for services given by URL are
    not needed and not checked.
    """
    lacking = missing(settings)
    if not lacking:
        log.info("prerequisites: all present")
        return
    names = ", ".join(f"{r.tool} ({r.purpose})" for r in lacking)
    packages = [r.apt_package for r in lacking]
    if not is_root():
        raise ServiceError(
            f"prerequisites: missing {names}; install them with:\n"
            f"  sudo apt-get update && sudo {' '.join(apt_install_command(packages))}"
        )
    if shutil.which("apt-get") is None:
        raise ServiceError(f"prerequisites: missing {names}, and apt-get is not available")
    log.info("prerequisites: missing %s; installing with apt-get", names)
    _apt_update_once()
    # Releases other than Debian 12 may lack postgresql-15: take their default server.
    if "postgresql-15" in packages and not _apt_has("postgresql-15"):
        packages = [("postgresql" if p == "postgresql-15" else p) for p in packages]
    _apt(apt_install_command(packages))
    still = missing(settings)
    if still:
        raise ServiceError(
            "prerequisites: still missing after apt-get install: "
            + ", ".join(r.tool for r in still)
        )
    log.info("prerequisites: installed %s", " ".join(packages))
