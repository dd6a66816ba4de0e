"""The admin API application: `create_app(settings)`, served by uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from api.errors import request_validation_handler
from api.routes import (
    analytics,
    attempts,
    auth,
    contests,
    dead_letters,
    grading,
    health,
    participants,
    question_uploads,
    questions,
    results,
)
from elevate.kafka import create_producer, ensure_topics
from elevate.observability import RequestMetrics
from elevate.settings import Settings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


async def _configure_connection(conn: AsyncConnection[DictRow]) -> None:
    # Timestamps come back in UTC whatever the server's default zone.
    await conn.execute("SET TIME ZONE 'UTC'")


def create_app(settings: Settings) -> FastAPI:
    """The API, with a Postgres pool and a Kafka producer opened by its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            settings.postgres_dsn,
            connection_class=AsyncConnection[DictRow],
            # Autocommit: a statement stands alone unless a route opens a transaction.
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=_configure_connection,
            min_size=1,
            max_size=10,
            open=False,
            name="api",
        )
        await pool.open(wait=True, timeout=30)
        try:
            await ensure_topics(settings)
            producer = create_producer(settings, client_id="elevate-api")
            await producer.start()
            try:
                # On app.state rather than in lifespan state so that tests can drive
                # the lifespan directly (`app.router.lifespan_context`) over ASGITransport.
                app.state.pool = pool
                app.state.producer = producer
                log.info("admin API ready", extra={"topic_prefix": settings.topic_prefix})
                yield
            finally:
                await producer.stop()
        finally:
            await pool.close()

    app = FastAPI(
        title="Elevate admin API",
        summary="Contests, questions, publishing, monitoring, grading and results.",
        version="1",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        # Both slash forms are routed (api.routing); never answer with a redirect.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    routers = (
        auth,
        contests,
        # Before `questions`, whose /{question_id}/ routes would otherwise be tried first.
        question_uploads,
        questions,
        participants,
        attempts,
        grading,
        results,
        analytics,
        dead_letters,
    )
    for module in routers:
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.add_middleware(RequestMetrics, role="api")
    return app
