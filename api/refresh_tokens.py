"""Refresh-token rotation in Postgres: issue, rotate once, revoke a family on reuse.

Every sign-in starts a family; each refresh marks the presented token used and issues
its child in the same family. A token presented a second time means two parties hold
it (one of them stole it), so the whole family is revoked and both must sign in again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from api.security import Role, new_refresh_token, refresh_token_hash
from elevate.settings import Settings

log = logging.getLogger(__name__)

Connection = AsyncConnection[DictRow]


class RefreshRejected(Exception):
    """The refresh token is unknown, expired, revoked or was already used."""


@dataclass(frozen=True)
class IssuedRefreshToken:
    """A refresh token to hand out once; only its hash is kept."""

    token: str
    expires_in: int


@dataclass(frozen=True)
class Rotation:
    """A successful refresh: whose it was and the token that replaces it."""

    admin_id: uuid.UUID
    role: Role
    refresh: IssuedRefreshToken


async def issue_refresh_token(
    conn: Connection,
    settings: Settings,
    admin_id: uuid.UUID,
    *,
    family_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
) -> IssuedRefreshToken:
    """Store and return a new refresh token; a new family unless `family_id` is given."""
    token = new_refresh_token()
    lifetime = timedelta(hours=settings.admin_refresh_token_hours)
    await conn.execute(
        """
        INSERT INTO refresh_tokens (id, token_hash, admin_id, family_id, parent_id, expires_at)
        VALUES (%s, %s, %s, %s, %s, now() + %s)
        """,
        (
            uuid.uuid4(),
            refresh_token_hash(token),
            admin_id,
            family_id or uuid.uuid4(),
            parent_id,
            lifetime,
        ),
    )
    return IssuedRefreshToken(token=token, expires_in=int(lifetime.total_seconds()))


async def rotate_refresh_token(conn: Connection, settings: Settings, token: str) -> Rotation:
    """Spend `token` and issue its successor; raises RefreshRejected.

    Runs its own transaction on an autocommit connection. A rejection is raised only
    after the transaction commits, so that revoking a family on reuse is kept even
    though the caller answers 401.
    """
    failure: str | None = None
    rotation: Rotation | None = None
    async with conn.transaction():
        # FOR UPDATE: two concurrent refreshes with one token are a reuse, not two wins.
        cursor = await conn.execute(
            """
            SELECT t.id, t.admin_id, t.family_id, t.used_at, t.revoked_at,
                   t.expires_at <= now() AS expired, u.role
            FROM refresh_tokens t JOIN admin_users u ON u.id = t.admin_id
            WHERE t.token_hash = %s
            FOR UPDATE OF t
            """,
            (refresh_token_hash(token),),
        )
        row = await cursor.fetchone()
        if row is None:
            failure = "refresh token invalid"
        elif row["revoked_at"] is not None:
            failure = "refresh token revoked; sign in again"
        elif row["used_at"] is not None:
            await revoke_family(conn, row["family_id"])
            log.warning(
                "refresh token reused; revoked its family",
                extra={"admin_id": str(row["admin_id"]), "family_id": str(row["family_id"])},
            )
            failure = "refresh token already used; every token of this sign-in is revoked"
        elif row["expired"]:
            failure = "refresh token expired; sign in again"
        else:
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = now() WHERE id = %s", (row["id"],)
            )
            successor = await issue_refresh_token(
                conn, settings, row["admin_id"], family_id=row["family_id"], parent_id=row["id"]
            )
            rotation = Rotation(admin_id=row["admin_id"], role=row["role"], refresh=successor)
    if rotation is None:
        raise RefreshRejected(failure or "refresh token invalid")
    return rotation


async def revoke_family(conn: Connection, family_id: uuid.UUID) -> None:
    """Revoke every live token of one sign-in."""
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = %s AND revoked_at IS NULL",
        (family_id,),
    )


async def revoke_token_family(conn: Connection, token: str) -> None:
    """Sign out: revoke the family of `token`; an unknown token changes nothing."""
    await conn.execute(
        """
        UPDATE refresh_tokens SET revoked_at = now()
        WHERE revoked_at IS NULL
          AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = %s)
        """,
        (refresh_token_hash(token),),
    )
