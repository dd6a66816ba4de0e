"""Dependencies of the routes, as `Annotated` aliases: settings, database, Kafka, auth."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, cast

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from api.errors import forbidden, unauthorized
from api.schemas import INT32_MAX
from api.security import InvalidTokenError, Role, decode_access_token
from elevate.settings import Settings

ConnectionPool = AsyncConnectionPool[AsyncConnection[DictRow]]

_bearer = HTTPBearer(
    auto_error=False,  # a missing token is our 401 with a message, not FastAPI's default
    description="An admin access token from POST /api/v1/auth/token/.",
)


@dataclass(frozen=True)
class AdminUser:
    """The authenticated caller."""

    id: uuid.UUID
    username: str
    role: Role


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return cast(Settings, request.app.state.settings)


def get_pool(request: Request) -> ConnectionPool:
    """The connection pool opened by the app's lifespan."""
    return cast(ConnectionPool, request.app.state.pool)


def get_producer(request: Request) -> AIOKafkaProducer:
    """The Kafka producer started by the app's lifespan."""
    return cast(AIOKafkaProducer, request.app.state.producer)


SettingsDep = Annotated[Settings, Depends(get_settings)]
Pool = Annotated[ConnectionPool, Depends(get_pool)]
Producer = Annotated[AIOKafkaProducer, Depends(get_producer)]


async def get_conn(pool: Pool) -> AsyncIterator[AsyncConnection[DictRow]]:
    """A pooled autocommit connection; writes that belong together use `transaction()`."""
    async with pool.connection() as conn:
        yield conn


# "function" scope hands the connection back as soon as the route returns, not after
# the response has been sent.
DbConn = Annotated[AsyncConnection[DictRow], Depends(get_conn, scope="function")]


async def current_admin(
    settings: SettingsDep,
    conn: DbConn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AdminUser:
    """The admin user of the bearer token: 401 without a valid token for a live user."""
    if credentials is None:
        raise unauthorized("missing bearer token: send Authorization: Bearer <access token>")
    try:
        claims = decode_access_token(settings, credentials.credentials)
    except InvalidTokenError as exc:
        raise unauthorized(str(exc)) from exc
    # The role is read from the database, not the token, so that a demoted or deleted
    # user loses access at once rather than when the token expires.
    cursor = await conn.execute(
        "SELECT id, username, role FROM admin_users WHERE id = %s", (claims.admin_id,)
    )
    row = await cursor.fetchone()
    if row is None:
        raise unauthorized("token invalid: the admin user no longer exists")
    return AdminUser(id=row["id"], username=row["username"], role=row["role"])


CurrentAdmin = Annotated[AdminUser, Depends(current_admin)]


async def require_admin(admin: CurrentAdmin) -> AdminUser:
    """The caller, who must have the admin role: 403 otherwise. Graders may only grade
    (`api.routes.grading`); every other route is for admins."""
    if admin.role != "admin":
        raise forbidden(f"this needs the admin role; {admin.username} is a {admin.role}")
    return admin


AdminOnly = Annotated[AdminUser, Depends(require_admin)]


@dataclass(frozen=True)
class PageWindow:
    """Which slice of a list to return."""

    limit: int
    offset: int


def page_window(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX, description="Items to skip.")] = 0,
) -> PageWindow:
    """The `limit` and `offset` query parameters of a list."""
    return PageWindow(limit=limit, offset=offset)


Paging = Annotated[PageWindow, Depends(page_window)]
