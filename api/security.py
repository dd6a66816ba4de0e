"""Admin credentials: argon2 password hashes, short-lived HS256 access tokens and
opaque refresh tokens.

Access tokens carry `typ = "admin_access"` so that no other token signed with the same
secret (attempt tokens) is ever accepted as an admin credential. Refresh tokens are
random strings, not JWTs: the server must look each up anyway (it works once), and
only their sha256 is stored (`api.refresh_tokens`).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from elevate.settings import Settings

ACCESS_TOKEN_TYPE = "admin_access"
ALGORITHM = "HS256"
REFRESH_TOKEN_BYTES = 32

Role = Literal["admin", "grader"]
ROLES: tuple[Role, ...] = ("admin", "grader")

_hasher = PasswordHasher()


class InvalidTokenError(Exception):
    """The bearer token is malformed, forged, expired or not an admin access token."""


@dataclass(frozen=True)
class AccessClaims:
    """What a valid admin access token says."""

    admin_id: uuid.UUID
    role: Role
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    """A freshly signed access token and how long it lives."""

    token: str
    expires_in: int


def hash_password(password: str) -> str:
    """An argon2id hash of `password` with a fresh salt."""
    return _hasher.hash(password)


@cache
def _unknown_user_hash() -> str:
    return _hasher.hash(uuid.uuid4().hex)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches the hash; None (an unknown user) never matches.

    An unknown user is still checked against a throwaway hash so that a wrong username
    costs as much time as a wrong password: timing does not reveal which names exist.
    """
    try:
        _hasher.verify(password_hash or _unknown_user_hash(), password)
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False
    return password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


def issue_access_token(
    settings: Settings, admin_id: uuid.UUID, role: Role, *, now: datetime | None = None
) -> IssuedToken:
    """Sign an access token for `admin_id` valid for `settings.admin_token_minutes`."""
    issued_at = now or datetime.now(UTC)
    lifetime = timedelta(minutes=settings.admin_token_minutes)
    claims = {
        "sub": str(admin_id),
        "role": role,
        "typ": ACCESS_TOKEN_TYPE,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        # A unique id per token leaves room for revocation lists and refresh rotation.
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)
    return IssuedToken(token=token, expires_in=int(lifetime.total_seconds()))


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """The claims of a valid admin access token; raises InvalidTokenError otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "typ", "role"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidTokenError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidTokenError("token invalid") from exc
    if claims.get("typ") != ACCESS_TOKEN_TYPE:
        raise InvalidTokenError("not an admin access token")
    role = claims.get("role")
    if role not in ROLES:
        raise InvalidTokenError("token has an unknown role")
    try:
        admin_id = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise InvalidTokenError("token subject is not an admin id") from exc
    return AccessClaims(
        admin_id=admin_id,
        role=role,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


def new_refresh_token() -> str:
    """A fresh refresh token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def refresh_token_hash(token: str) -> str:
    """The stored form of a refresh token: its sha256, in hex.

    A fast hash suffices (unlike passwords): the token has 256 random bits, so a leaked
    hash cannot be reversed by guessing.
    """
    return hashlib.sha256(token.encode()).hexdigest()
