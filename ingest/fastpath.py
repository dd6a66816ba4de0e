"""The hot path: autosave, heartbeat and submit answered straight from ASGI.

These three requests are most of ingest's traffic. Routing them through FastAPI's
dependency solving and response classes costs several times the work of the request
itself (see README, "Ingest hot path"), so this thin ASGI layer parses the path,
reads the body under the size limit and calls the same `IngestService` the FastAPI
routes call. Everything else, including the OpenAPI contract, stays with FastAPI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from elevate.observability import observe_request
from ingest.service import Accepted, IngestError, IngestService

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ATTEMPT_ACTION = re.compile(r"^/api/v1/attempt/([^/]+)/(save|heartbeat|submit)/?$")
JSON_HEADERS = [(b"content-type", b"application/json")]
# Route templates as metric labels: one series per action, not one per attempt.
ROUTES = {a: f"/api/v1/attempt/{{attempt_id}}/{a}" for a in ("save", "heartbeat", "submit")}

_encode = msgspec.json.encode


async def read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit`, so an oversized
    upload is never held in memory whole."""
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        raise IngestError(413, f"request body is {int(declared)} bytes; the limit is {limit}")
    body = bytearray()
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IngestError(400, "client disconnected before sending the whole body")
        body += message.get("body", b"")
        if len(body) > limit:
            raise IngestError(413, f"request body is over the {limit}-byte limit")
        more = message.get("more_body", False)
    return bytes(body)


def error_body(exc: IngestError) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.field:
        body["field"] = exc.field
    return body


def accepted_body(result: Accepted) -> dict[str, Any]:
    return {"event_id": result.event_id, "server_ts": result.server_ts.isoformat()}


def error_headers(exc: IngestError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}


async def _respond(
    send: Send, status: int, body: dict[str, Any], extra: dict[str, str] | None = None
) -> None:
    headers = JSON_HEADERS + [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": _encode(body)})


class CandidateFastPath:
    """Serves the three hot attempt actions itself and passes everything else on."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.service: IngestService | None = None  # set once the app's lifespan started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            ATTEMPT_ACTION.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST" and self.service
            else None
        )
        if match is None or self.service is None:
            await self.app(scope, receive, send)
            return
        attempt_id, action = match.groups()
        started = time.perf_counter()
        status = await self._handle(self.service, scope, receive, send, attempt_id, action)
        observe_request("ingest", ROUTES[action], status, time.perf_counter() - started)

    async def _handle(
        self,
        service: IngestService,
        scope: Scope,
        receive: Receive,
        send: Send,
        attempt_id: str,
        action: str,
    ) -> int:
        headers = dict(scope["headers"])
        client = scope.get("client")
        ip = client[0] if client else None
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        try:
            body = await read_body(receive, headers, self.max_body_bytes)
            if action == "save":
                result = await service.save(attempt_id, authorization, body, ip)
            elif action == "heartbeat":
                user_agent = headers.get(b"user-agent", b"").decode("latin-1") or None
                result = await service.heartbeat(attempt_id, authorization, body, ip, user_agent)
            else:
                result = await service.submit(attempt_id, authorization, body, ip)
        except IngestError as exc:
            await _respond(send, exc.status, error_body(exc), error_headers(exc))
            return exc.status
        await _respond(send, 202, accepted_body(result))
        return 202
