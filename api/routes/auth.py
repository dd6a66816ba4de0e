"""Admin sign-in: username and password for a short-lived bearer token."""

from __future__ import annotations

import asyncio
import logging

from api.deps import DbConn, SettingsDep
from api.errors import unauthorized
from api.routing import SlashTolerantRouter
from api.schemas import TokenRequest, TokenResponse
from api.security import hash_password, issue_access_token, needs_rehash, verify_password

log = logging.getLogger(__name__)

router = SlashTolerantRouter(prefix="/auth", tags=["auth"])


@router.post("/token/", responses={401: {"description": "Wrong username or password"}})
async def issue_token(body: TokenRequest, conn: DbConn, settings: SettingsDep) -> TokenResponse:
    """Exchange an admin's username and password for an access token."""
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
    log.info("issued admin token", extra={"admin_id": str(row["id"])})
    return TokenResponse(access_token=issued.token, expires_in=issued.expires_in)
