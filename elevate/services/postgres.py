"""A private Postgres cluster under `settings.home / "postgres"`, on loopback only.

The server refuses to run as root, so when the launcher is root the cluster
belongs to the `postgres` system user (created by Debian's postgresql package)
and every server binary runs as that user.

Layout: data/ (the cluster), postgres.log (server log), run/ (unix socket).
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from elevate.services.prerequisites import (
    ServiceError,
    is_root,
    log,
    pid_alive,
    port_open,
    postgres_bindir,
    redact,
    with_tail,
)
from elevate.settings import Settings

HOST = "127.0.0.1"
SUPERUSER = "elevate"
DATABASE = "elevate"
SYSTEM_USER = "postgres"
MAX_CONNECTIONS = 200
START_TIMEOUT_S = 60
# Unix socket paths are limited to 107 bytes by sockaddr_un.
MAX_SOCKET_PATH = 107
# libpq variables in the caller's environment must not redirect the server tools.
_PG_ENV_DROP = ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGHOSTADDR")


@dataclass(frozen=True)
class PostgresPaths:
    """Where the private cluster keeps its data, log and socket."""

    root: Path
    port: int

    @classmethod
    def of(cls, settings: Settings) -> PostgresPaths:
        """The paths for `settings` (absolute)."""
        return cls(root=(settings.home / "postgres").resolve(), port=settings.local_postgres_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def sockets(self) -> Path:
        preferred = self.root / "run"
        if len(f"{preferred}/.s.PGSQL.{self.port}") <= MAX_SOCKET_PATH:
            return preferred
        return Path(tempfile.gettempdir()) / f"elevate-pg-{self.port}"


# --------------------------------------------------------------------------- pure parts


def initdb_args(paths: PostgresPaths) -> list[str]:
    """initdb arguments: trust auth for the local superuser, UTF-8, codepoint collation."""
    return [
        "-D",
        str(paths.data),
        "-U",
        SUPERUSER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    ]


def server_options(paths: PostgresPaths) -> str:
    """The `pg_ctl -o` string. pg_ctl hands it to a shell, hence the quoting.

    fsync stays on: the results stored here must survive a crash.
    """
    return shlex.join(
        [
            "-p",
            str(paths.port),
            "-k",
            str(paths.sockets),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            f"max_connections={MAX_CONNECTIONS}",
        ]
    )


def start_args(paths: PostgresPaths) -> list[str]:
    """pg_ctl arguments that start the server and wait until it accepts connections."""
    return [
        "-D",
        str(paths.data),
        "-l",
        str(paths.log),
        "-o",
        server_options(paths),
        "-w",
        "-t",
        str(START_TIMEOUT_S),
        "start",
    ]


def admin_dsn(port: int) -> str:
    """DSN of the maintenance database, used to create the application database."""
    return f"postgresql://{SUPERUSER}@{HOST}:{port}/postgres"


def postmaster_pid(data: Path) -> tuple[int, int] | None:
    """(pid, port) from postmaster.pid, or None when the file is absent or unreadable."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Runner:
    """Runs the server binaries, as the `postgres` user when we are root."""

    bindir: Path
    user: pwd.struct_passwd | None

    @classmethod
    def find(cls) -> Runner:
        """The runner for this machine; ServiceError if binaries or the user are missing."""
        bindir = postgres_bindir()
        if bindir is None:
            raise ServiceError("postgres: initdb/pg_ctl not found; run ensure_prerequisites first")
        if not is_root():
            return cls(bindir, None)
        try:
            return cls(bindir, pwd.getpwnam(SYSTEM_USER))
        except KeyError as exc:
            raise ServiceError(
                f"postgres: running as root needs the '{SYSTEM_USER}' system user to own the "
                "cluster (the server refuses root); create it with "
                f"`adduser --system --group {SYSTEM_USER}` or install postgresql"
            ) from exc

    def run(
        self, tool: str, args: list[str], cwd: Path, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run `tool` from the server's bindir; output is captured, never raises on exit code."""
        env = {k: v for k, v in os.environ.items() if k not in _PG_ENV_DROP}
        user = self.user
        if user is not None:
            env["HOME"] = user.pw_dir
            env["USER"] = env["LOGNAME"] = user.pw_name
        return subprocess.run(
            [str(self.bindir / tool), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            # Drop root's supplementary groups along with the uid.
            extra_groups=None if user is None else [],
        )

    def give(self, path: Path) -> None:
        """Hand `path` and everything under it to the cluster's owner when we are root.

        Only walks the tree when `path` itself has another owner, so a normal
        start does not touch every file of the cluster.
        """
        if self.user is None or path.lstat().st_uid == self.user.pw_uid:
            return
        uid, gid = self.user.pw_uid, self.user.pw_gid
        for p in [path, *path.rglob("*")]:
            if p.lstat().st_uid != uid:
                os.lchown(p, uid, gid)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])


def _prepare(runner: Runner, paths: PostgresPaths) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.sockets.mkdir(parents=True, exist_ok=True)
    runner.give(paths.root)
    if paths.sockets != paths.root / "run":
        runner.give(paths.sockets)
    if runner.user is not None:
        # The folders above may be closed to others (mode 0700 home, say): check from
        # the postgres user's side so the error names the real cause, not initdb's.
        probe = subprocess.run(
            ["/bin/sh", "-c", 'test -w "$1" && test -x "$1"', "sh", str(paths.root)],
            user=runner.user.pw_uid,
            group=runner.user.pw_gid,
            extra_groups=[],
            check=False,
        )
        if probe.returncode != 0:
            raise ServiceError(
                f"postgres: the '{runner.user.pw_name}' user cannot reach {paths.root}; a parent "
                "folder lacks search permission (chmod o+x it) or set ELEVATE_HOME elsewhere"
            )


def _initdb(runner: Runner, paths: PostgresPaths) -> None:
    if (paths.data / "PG_VERSION").is_file():
        return
    log.info("postgres: initialising a cluster in %s (first run)", paths.data)
    result = runner.run("initdb", initdb_args(paths), cwd=paths.root)
    if result.returncode != 0:
        raise ServiceError(
            f"postgres: initdb failed (exit {result.returncode}):\n{_output(result)}"
        )


def answers(dsn: str, timeout: float = 5.0) -> bool:
    """Whether a Postgres at `dsn` accepts a connection and a query."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


def _ensure_database(port: int) -> None:
    import psycopg

    try:
        with psycopg.connect(admin_dsn(port), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (DATABASE,)
            ).fetchone()
            if exists is None:
                conn.execute(f'create database "{DATABASE}"')
                log.info("postgres: created database %s", DATABASE)
    except psycopg.Error as exc:
        raise ServiceError(f"postgres: could not create database {DATABASE}: {exc}") from exc


def running(paths: PostgresPaths) -> int | None:
    """The postmaster's pid if our cluster is running (per its postmaster.pid)."""
    info = postmaster_pid(paths.data)
    if info is None or not pid_alive(info[0]):
        return None
    return info[0]


def up(settings: Settings) -> None:
    """Start the private cluster (initialising it on first run), or check the external one."""
    if settings.database_url:
        check_external(settings)
        return
    paths = PostgresPaths.of(settings)
    address = f"{HOST}:{paths.port}"
    started = time.monotonic()
    pid = running(paths)
    if pid is not None:
        if answers(admin_dsn(paths.port)):
            _ensure_database(paths.port)
            log.info("postgres: already running on %s (pid %d)", address, pid)
            return
        info = postmaster_pid(paths.data)
        raise ServiceError(
            f"postgres: the cluster in {paths.data} runs (pid {pid}, port "
            f"{info[1] if info else '?'}) but does not answer on {address}; "
            f"stop it with `elevate services down`; log: {paths.log}"
        )
    if port_open(HOST, paths.port):
        raise ServiceError(
            f"postgres: {address} is taken by another process; stop it or set ELEVATE_POSTGRES_PORT"
        )
    runner = Runner.find()
    _prepare(runner, paths)
    _initdb(runner, paths)
    since = paths.log.stat().st_size if paths.log.exists() else 0
    started = time.monotonic()
    log.info("postgres: starting on %s (log: %s)", address, paths.log)
    result = runner.run("pg_ctl", start_args(paths), cwd=paths.root, timeout=START_TIMEOUT_S + 30)
    if result.returncode != 0:
        raise ServiceError(
            with_tail(
                f"postgres: pg_ctl start failed (exit {result.returncode}): {_output(result)}\n"
                f"  server log: {paths.log}",
                paths.log,
                since,
            )
        )
    _ensure_database(paths.port)
    pid = running(paths)
    log.info("postgres: started on %s in %.1fs (pid %s)", address, time.monotonic() - started, pid)


def check_external(settings: Settings) -> None:
    """Raise ServiceError unless the Postgres given by DATABASE_URL answers."""
    shown = redact(settings.database_url)
    if not answers(settings.database_url, timeout=10.0):
        raise ServiceError(f"postgres: external database {shown} (DATABASE_URL) does not answer")
    log.info("postgres: external database %s answers", shown)


def down(settings: Settings) -> None:
    """Stop the private cluster with a fast shutdown (rolls back open transactions)."""
    if settings.database_url:
        log.info("postgres: external (%s); nothing to stop", redact(settings.database_url))
        return
    paths = PostgresPaths.of(settings)
    pid = running(paths)
    if pid is None:
        log.info("postgres: not running")
        return
    started = time.monotonic()
    log.info("postgres: stopping pid %d", pid)
    result = Runner.find().run(
        "pg_ctl", ["-D", str(paths.data), "-m", "fast", "-w", "-t", "60", "stop"], cwd=paths.root
    )
    if result.returncode != 0:
        raise ServiceError(with_tail(f"postgres: pg_ctl stop failed: {_output(result)}", paths.log))
    log.info("postgres: stopped in %.1fs", time.monotonic() - started)


def status(settings: Settings) -> str:
    """One line on Postgres: running/stopped, or the external database's state."""
    if settings.database_url:
        state = "answering" if answers(settings.database_url) else "NOT answering"
        return f"external {redact(settings.database_url)} ({state})"
    paths = PostgresPaths.of(settings)
    pid = running(paths)
    if pid is None:
        return "stopped"
    if answers(admin_dsn(paths.port), timeout=3.0):
        return f"running at {settings.postgres_dsn} (pid {pid})"
    return f"not answering (pid {pid}); log: {paths.log}"
