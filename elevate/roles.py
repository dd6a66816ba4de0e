"""The processes of the pipeline and how each starts.

`ingest`, `api`, `sink-postgres` and `sink-clickhouse` are asyncio roles that can share
one process; `streams` is a Faust worker and owns its process. `all` supervises one
process per group below: the roles then use both cores, and in embedded mode the
ClickHouse sink shares the api's process because chDB opens a data folder from one
process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn

from elevate.observability import start_operations_server
from elevate.settings import Settings

log = logging.getLogger(__name__)

ASYNC_ROLES = ("ingest", "api", "sink-postgres", "sink-clickhouse")
ROLES = (*ASYNC_ROLES, "streams")


def process_groups(settings: Settings) -> list[list[str]]:
    """Which roles `all` runs together in one process."""
    ingest = [["ingest"]] * settings.ingest_workers
    if settings.clickhouse_is_embedded:
        return [["streams"], *ingest, ["api", "sink-clickhouse"], ["sink-postgres"]]
    return [["streams"], *ingest, ["api"], ["sink-clickhouse"], ["sink-postgres"]]


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket that several processes bind at once; the kernel spreads the
    connections between them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(app: object, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    return uvicorn.Server(config)


async def run_async_roles(settings: Settings, roles: list[str]) -> None:
    """Run the asyncio roles together until one stops or the process is signalled."""
    from ingest.app import create_app as create_ingest
    from sinks.clickhouse import TOPICS as CLICKHOUSE_TOPICS
    from sinks.clickhouse import ClickHouse, ClickHouseWriter
    from sinks.consumer import SinkStats, run_sink
    from sinks.migrations import apply_migrations
    from sinks.postgres import TOPICS as POSTGRES_TOPICS
    from sinks.postgres import PostgresWriter

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    clickhouse = None
    if "sink-clickhouse" in roles or "api" in roles:  # the api serves analytics
        clickhouse = await asyncio.to_thread(ClickHouse, settings.clickhouse_dsn)
    if "api" in roles or "sink-postgres" in roles:
        await asyncio.to_thread(apply_migrations, settings.postgres_dsn)

    jobs: list[Callable[[], Coroutine[Any, Any, None]]] = []
    servers: list[uvicorn.Server] = []
    if "ingest" in roles:
        ingest_server = _uvicorn_server(
            create_ingest(settings), settings.ingest_host, settings.ingest_port
        )
        ingest_socket = shared_socket(settings.ingest_host, settings.ingest_port)
        servers.append(ingest_server)
        jobs.append(lambda: ingest_server.serve(sockets=[ingest_socket]))
    if "api" in roles:
        from api.main import create_app as create_api

        api_app = create_api(settings)
        api_app.state.clickhouse = clickhouse
        api_server = _uvicorn_server(api_app, settings.api_host, settings.api_port)
        servers.append(api_server)
        jobs.append(api_server.serve)
    for server in servers:
        # This process owns SIGTERM/SIGINT (the stop event), not each server.
        server.capture_signals = lambda: contextlib.nullcontext()  # type: ignore[method-assign,assignment,return-value]
    sink_stats: list[SinkStats] = []
    if "sink-postgres" in roles:
        postgres_stats = SinkStats()
        sink_stats.append(postgres_stats)

        async def postgres_sink() -> None:
            from psycopg_pool import AsyncConnectionPool

            async with AsyncConnectionPool(settings.postgres_dsn, min_size=1, max_size=4) as pool:
                await run_sink(
                    settings,
                    name="postgres",
                    topics=POSTGRES_TOPICS,
                    writer=PostgresWriter(pool),
                    stats=postgres_stats,
                    stop=stop,
                )

        jobs.append(postgres_sink)
    if "sink-clickhouse" in roles:
        assert clickhouse is not None
        writer = ClickHouseWriter(clickhouse)
        clickhouse_stats = SinkStats()
        sink_stats.append(clickhouse_stats)

        async def clickhouse_sink() -> None:
            await run_sink(
                settings,
                name="clickhouse",
                topics=CLICKHOUSE_TOPICS,
                writer=writer,
                stats=clickhouse_stats,
                stop=stop,
            )

        jobs.append(clickhouse_sink)

    def ready() -> bool:
        return all(server.started for server in servers) and all(s.started for s in sink_stats)

    if settings.metrics_port:
        start_operations_server(settings.metrics_host, settings.metrics_port, ready)
    tasks = [asyncio.create_task(job()) for job in jobs]
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    for server in servers:
        server.should_exit = True
    for task in tasks:
        if task not in done:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=10)
    for task in tasks:
        if task in done and (failure := task.exception()) is not None:
            raise failure
    if clickhouse is not None:
        clickhouse.close()


def run_streams(settings: Settings) -> None:
    """Run the Faust worker in this process (it owns the event loop)."""
    import faust
    from aiokafka.admin import NewTopic

    from elevate.kafka import ensure_topics
    from streams.worker import app

    # Faust's own creation of its changelog topics can fail on a broker that has only
    # just started, and the broker creates no topic by itself: create them here.
    changelogs = [
        NewTopic(
            name=table.changelog_topic.get_topic_name(),
            num_partitions=table.partitions,
            replication_factor=1,
            topic_configs={"cleanup.policy": "compact", **table.extra_topic_configs},
        )
        for table in app.tables.values()
    ]
    asyncio.run(ensure_topics(settings, extra=changelogs))
    if settings.metrics_port:
        from streams.app import definitions

        start_operations_server(
            settings.metrics_host, settings.metrics_port, definitions.ready.is_set
        )
    worker = faust.Worker(app, loglevel="WARNING", redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


def supervise(settings: Settings, groups: list[list[str]]) -> int:
    """Start one child process per group; stop them all when any stops or on a signal."""
    children: list[tuple[list[str], subprocess.Popen[bytes]]] = []
    stopping = False

    def stop_all(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for number, group in enumerate(groups):
        command = [sys.executable, "-m", "elevate", "run", *group]
        env = os.environ.copy()
        if settings.metrics_port:
            env["METRICS_PORT"] = str(settings.metrics_port + number)
        children.append((group, subprocess.Popen(command, env=env)))
        log.info("started %s (pid %d)", "+".join(group), children[-1][1].pid)
    code = 0
    while not stopping:
        for group, child in children:
            if child.poll() is not None:
                log.error(
                    "%s exited with %s; stopping the others", "+".join(group), child.returncode
                )
                code = child.returncode or 1
                stopping = True
        time.sleep(0.2)
    for _, child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for _, child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return code
