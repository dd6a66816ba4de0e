"""Admin sign-in: username and password for a short-lived access token and a refresh
token; the refresh token rotates on every use (`api.refresh_tokens`)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import Response, status

from api.deps import DbConn, SettingsDep
from api.errors import unauthorized
from api.refresh_tokens import (
    RefreshRejected,
    issue_refresh_token,
    revoke_token_family,
    rotate_refresh_token,
)
from api.routing import SlashTolerantRouter
from api.schemas import RefreshRequest, TokenRequest, TokenResponse
from api.security import hash_password, issue_access_token, needs_rehash, verify_password

log = logging.getLogger(__name__)

router = SlashTolerantRouter(prefix="/auth", tags=["auth"])


@router.post("/token/", responses={401: {"description": "Wrong username or password"}})
async def issue_token(body: TokenRequest, conn: DbConn, settings: SettingsDep) -> TokenResponse:
    """Exchange an admin's username and password for an access and a refresh token."""
    cursor = await conn.execute(
        "SELECT id, password_hash, role FROM admin_users WHERE username = %s", (body.username,)
    )
    row = await cursor.fetchone()
    # argon2 is deliberately slow; hashing in a thread keeps the event loop serving.
    valid = await asyncio.to_thread(
        verify_password, row["password_hash"] if row else None, body.password
    )
    if row is None or not valid:
        log.info("rejected admin sign-in for %s", body.username)
        raise unauthorized("wrong username or password")
    if needs_rehash(row["password_hash"]):
        new_hash = await asyncio.to_thread(hash_password, body.password)
        await conn.execute(
            "UPDATE admin_users SET password_hash = %s WHERE id = %s", (new_hash, row["id"])
        )
    issued = issue_access_token(settings, row["id"], row["role"])
    refresh = await issue_refresh_token(conn, settings, row["id"])
    log.info("issued admin token", extra={"admin_id": str(row["id"])})
    return TokenResponse(
        access_token=issued.token,
        expires_in=issued.expires_in,
        refresh_token=refresh.token,
        refresh_expires_in=refresh.expires_in,
    )


@router.post(
    "/refresh/",
    responses={401: {"description": "Unknown, expired, revoked or already used refresh token"}},
)
async def refresh_token(body: RefreshRequest, conn: DbConn, settings: SettingsDep) -> TokenResponse:
    """Exchange a refresh token for a new access token and a new refresh token.

    A refresh token works once. Presenting one that was already used revokes every
    token descended from the same sign-in: whoever holds them must sign in again.
    """
    try:
        rotation = await rotate_refresh_token(conn, settings, body.refresh_token)
    except RefreshRejected as exc:
        raise unauthorized(str(exc)) from exc
    issued = issue_access_token(settings, rotation.admin_id, rotation.role)
    log.info("refreshed admin token", extra={"admin_id": str(rotation.admin_id)})
    return TokenResponse(
        access_token=issued.token,
        expires_in=issued.expires_in,
        refresh_token=rotation.refresh.token,
        refresh_expires_in=rotation.refresh.expires_in,
    )


@router.post("/revoke/", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(body: RefreshRequest, conn: DbConn) -> Response:
    """Sign out: revoke the refresh token and every token of its sign-in.

    Answers 204 whether or not the token was known, so the route reveals nothing.
    Access tokens already issued stay valid until they expire (minutes).
    """
    await revoke_token_family(conn, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
