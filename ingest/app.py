"""The candidate HTTP API. Routes stay thin: read the raw body and headers, call the
service, turn its answer or `IngestError` into a response. Autosave, heartbeat and
submit are served by `ingest.fastpath` in front of FastAPI; their routes here carry
the OpenAPI contract and serve any request the fast path passes on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response

from avro_schemas.topics import ATTEMPT_CLOCK, CODE_RESULTS
from elevate.kafka import create_producer, ensure_topics, follow_topic
from elevate.observability import RequestMetrics, metrics_response_body
from elevate.settings import Settings
from ingest.bodies import (
    ExecuteBody,
    HeartbeatBody,
    SaveBody,
    StartBody,
    SubmitBody,
    openapi_body,
)
from ingest.clocks import AttemptClocks
from ingest.code_results import CodeResults
from ingest.fastpath import (
    CandidateFastPath,
    accepted_body,
    error_body,
    error_headers,
    read_body,
)
from ingest.service import Accepted, IngestError, IngestService
from streams.definitions import DefinitionsView, follow_definitions

log = logging.getLogger(__name__)

DEFINITIONS_READY_TIMEOUT = 60.0

AuthorizationHeader = Annotated[str | None, Header()]
UserAgentHeader = Annotated[str | None, Header()]


def _accepted(result: Accepted) -> JSONResponse:
    return JSONResponse(accepted_body(result), status_code=202)


async def _body(request: Request) -> bytes:
    limit: int = request.app.state.max_body_bytes
    return await read_body(request.receive, dict(request.scope["headers"]), limit)


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def create_app(settings: Settings) -> CandidateFastPath:
    """The ingest application (FastAPI behind the hot-path layer) with its producer and
    definitions follower."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)
        producer = create_producer(settings, client_id="elevate-ingest")
        await producer.start()
        definitions = DefinitionsView()
        clocks = AttemptClocks(contest_end=definitions.contest_end)
        code_results = CodeResults()
        followers = [
            asyncio.create_task(follow_definitions(settings, definitions)),
            asyncio.create_task(follow_topic(settings, ATTEMPT_CLOCK, clocks.apply, clocks.ready)),
            asyncio.create_task(
                follow_topic(settings, CODE_RESULTS, code_results.apply, code_results.ready)
            ),
        ]
        try:
            async with asyncio.timeout(DEFINITIONS_READY_TIMEOUT):
                await definitions.ready.wait()
                await clocks.ready.wait()
            app.state.service = IngestService(settings, producer, definitions, clocks, code_results)
            fast_path.service = app.state.service
            yield
        finally:
            for follower in followers:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            await producer.stop()

    app = FastAPI(
        title="Elevate ingest",
        description="Candidate actions: start, autosave, submit, heartbeat. Every 202 means "
        "the event is stored in Kafka.",
        version="1",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
    )

    app.state.max_body_bytes = settings.max_body_bytes

    fast_path = CandidateFastPath(RequestMetrics(app, "ingest"), settings.max_body_bytes)

    @app.exception_handler(IngestError)
    async def _rejected(request: Request, exc: IngestError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=exc.status, headers=error_headers(exc))

    def service(request: Request) -> IngestService:
        svc: IngestService = request.app.state.service
        return svc

    @app.post(
        "/api/v1/contest/{contest_id}/start",
        status_code=202,
        openapi_extra=openapi_body(StartBody),
        summary="Start or resume an attempt; returns the attempt token and the server deadline",
    )
    async def start(
        contest_id: str, request: Request, user_agent: UserAgentHeader = None
    ) -> JSONResponse:
        result = await service(request).start(
            contest_id, await _body(request), _client_ip(request), user_agent
        )
        return JSONResponse(result, status_code=202)

    @app.post(
        "/api/v1/attempt/{attempt_id}/save",
        status_code=202,
        openapi_extra=openapi_body(SaveBody),
        summary="Autosave one answer",
    )
    async def save(
        attempt_id: str, request: Request, authorization: AuthorizationHeader = None
    ) -> JSONResponse:
        return _accepted(
            await service(request).save(
                attempt_id, authorization, await _body(request), _client_ip(request)
            )
        )

    @app.post(
        "/api/v1/attempt/{attempt_id}/submit",
        status_code=202,
        openapi_extra=openapi_body(SubmitBody),
        summary="Submit the attempt",
    )
    async def submit(
        attempt_id: str, request: Request, authorization: AuthorizationHeader = None
    ) -> JSONResponse:
        return _accepted(
            await service(request).submit(
                attempt_id, authorization, await _body(request), _client_ip(request)
            )
        )

    @app.post(
        "/api/v1/attempt/{attempt_id}/heartbeat",
        status_code=202,
        openapi_extra=openapi_body(HeartbeatBody),
        summary="Liveness beat or focus change",
    )
    async def heartbeat(
        attempt_id: str,
        request: Request,
        authorization: AuthorizationHeader = None,
        user_agent: UserAgentHeader = None,
    ) -> JSONResponse:
        return _accepted(
            await service(request).heartbeat(
                attempt_id, authorization, await _body(request), _client_ip(request), user_agent
            )
        )

    @app.post(
        "/api/v1/attempt/{attempt_id}/code/execute",
        status_code=202,
        openapi_extra=openapi_body(ExecuteBody),
        summary="Run code on the samples or a custom input; poll the result by job id",
    )
    async def execute_code(
        attempt_id: str, request: Request, authorization: AuthorizationHeader = None
    ) -> JSONResponse:
        accepted = await service(request).execute(
            attempt_id, authorization, await _body(request), _client_ip(request)
        )
        return JSONResponse(
            {"job_id": accepted.event_id, "server_ts": accepted.server_ts.isoformat()},
            status_code=202,
        )

    @app.get(
        "/api/v1/attempt/{attempt_id}/code/result/{job_id}",
        summary="A code run's verdict, time, memory and output (202 while it runs)",
    )
    async def code_result(
        attempt_id: str, job_id: str, request: Request, authorization: AuthorizationHeader = None
    ) -> JSONResponse:
        status, body = service(request).code_result(attempt_id, authorization, job_id)
        return JSONResponse(body, status_code=status)

    @app.get(
        "/api/v1/attempt/{attempt_id}",
        summary="The attempt's server time, deadline and remaining seconds",
    )
    async def attempt_clock(
        attempt_id: str, request: Request, authorization: AuthorizationHeader = None
    ) -> JSONResponse:
        return JSONResponse(service(request).clock(attempt_id, authorization))

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = metrics_response_body()
        return Response(body, media_type=content_type)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        ready = hasattr(request.app.state, "service")
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    return fast_path
