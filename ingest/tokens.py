"""Signed attempt tokens: issued at start, they let a candidate write one attempt only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

ALGORITHM = "HS256"
TOKEN_TYPE = "attempt"


class TokenError(Exception):
    """The token is missing, malformed, expired or not an attempt token."""


@dataclass(frozen=True)
class AttemptClaims:
    attempt_id: str
    contest_id: str
    started_at: datetime | None = None  # the server time the token was issued at start


def issue_attempt_token(secret: str, claims: AttemptClaims, expires_at: datetime) -> str:
    payload = {
        "sub": claims.attempt_id,
        "cid": claims.contest_id,
        "typ": TOKEN_TYPE,
        "st": int(claims.started_at.timestamp() * 1000) if claims.started_at else None,
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


class AttemptTokenReader:
    """Verifies attempt tokens, remembering the ones already verified: a candidate sends
    the same token with every autosave, and checking a signature is the costliest step
    of a save. Expiry is still checked on every use."""

    def __init__(self, secret: str, capacity: int = 100_000) -> None:
        self.secret = secret
        self.capacity = capacity
        self._verified: dict[str, tuple[AttemptClaims, float]] = {}

    def read(self, authorization: str | None) -> AttemptClaims:
        if authorization:
            known = self._verified.get(authorization)
            if known is not None and known[1] > time.time():
                return known[0]
        claims, expires = _verify(self.secret, authorization)
        if len(self._verified) >= self.capacity:
            self._verified.clear()  # crude but bounded; tokens re-verify once after this
        self._verified[authorization or ""] = (claims, expires)
        return claims


def read_attempt_token(secret: str, authorization: str | None) -> AttemptClaims:
    """The claims of a `Bearer` attempt token, or TokenError saying what is wrong."""
    return _verify(secret, authorization)[0]


def _verify(secret: str, authorization: str | None) -> tuple[AttemptClaims, float]:
    if not authorization:
        raise TokenError("missing Authorization header (Bearer attempt token)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise TokenError("Authorization must be 'Bearer <attempt token>'")
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("attempt token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid attempt token: {exc}") from exc
    if payload.get("typ") != TOKEN_TYPE or not isinstance(payload.get("cid"), str):
        raise TokenError("not an attempt token")
    started = payload.get("st")
    claims = AttemptClaims(
        attempt_id=str(payload["sub"]),
        contest_id=payload["cid"],
        started_at=datetime.fromtimestamp(started / 1000, UTC)
        if isinstance(started, int)
        else None,
    )
    return claims, float(payload["exp"])
