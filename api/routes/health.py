"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from elevate.observability import metrics_response_body

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics() -> Response:
    """This process's metrics in Prometheus text format."""
    body, content_type = metrics_response_body()
    return Response(body, media_type=content_type)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Postgres answers and the Kafka producer is started."""
    pool = getattr(request.app.state, "pool", None)
    producer = getattr(request.app.state, "producer", None)
    problems = []
    if pool is None or producer is None:
        problems.append("starting")
    else:
        try:
            async with pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
        except Exception as exc:
            problems.append(f"postgres: {type(exc).__name__}")
    body = {"ready": not problems, "problems": problems}
    return JSONResponse(body, status_code=200 if not problems else 503)
