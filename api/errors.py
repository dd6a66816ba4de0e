"""The API's client errors, in one place.

Every 4xx body is `{"detail": "..."}`, except 422s, which keep FastAPI's list of field
errors so that rule violations found after parsing look like parsing errors.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.definition_rules import FieldProblem

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def unprocessable(problems: Sequence[FieldProblem]) -> RequestValidationError:
    """A 422 listing each problem at its place in the request body."""
    return RequestValidationError(
        [
            {"type": "value_error", "loc": ("body", *problem.loc), "msg": problem.message}
            for problem in problems
        ]
    )


def not_found(what: str, id_: uuid.UUID) -> HTTPException:
    """A 404 naming the missing resource."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} {id_} not found")


def conflict(message: str) -> HTTPException:
    """A 409: the request is well-formed but the resource's state forbids it."""
    return HTTPException(status.HTTP_409_CONFLICT, message)


def unauthorized(message: str) -> HTTPException:
    """A 401 with the bearer challenge clients expect."""
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers=BEARER_CHALLENGE)


def forbidden(message: str) -> HTTPException:
    """A 403: authenticated, but the role may not do this."""
    return HTTPException(status.HTTP_403_FORBIDDEN, message)


# The OpenAPI entry of routes that send a record to Kafka inside their transaction.
KAFKA_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"description": "Kafka did not take the record; nothing was changed, retry"}
}


def kafka_unavailable(what: str, exc: Exception) -> HTTPException:
    """A 503 for a record Kafka did not take, with the transaction rolled back."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"{what} could not be sent to Kafka ({type(exc).__name__}); nothing was changed, retry",
    )


def draft_only(contest_id: uuid.UUID) -> HTTPException:
    """A 409 for editing a published contest or its questions."""
    return conflict(
        f"contest {contest_id} is published and can no longer be edited;"
        " changes to a published contest go through a regrade"
    )


def _json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as strings: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


class EscapedJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped, so lone surrogates render too."""

    def render(self, content: Any) -> bytes:
        """The body, as ASCII-only JSON."""
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body, made safe for any input the client sent.

    Each field error echoes the offending input. Python's JSON parser, which FastAPI
    uses, accepts NaN, Infinity and lone surrogates ("\\ud800"), which the default
    handler then fails to render, answering bad input with a 500.
    """
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return EscapedJSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": _json_safe(jsonable_encoder(errors))},
    )
