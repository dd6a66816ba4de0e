"""Participants (one per email address, created by the sinks) and their attempts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from api.deps import DbConn, Paging, require_admin
from api.errors import not_found
from api.live_attempts import LIVE_ATTEMPT_SELECT, live_attempt
from api.routing import SlashTolerantRouter
from api.schemas import AttemptLive, Page, ParticipantOut, SearchText
from streams.rules.timing import server_now

router = SlashTolerantRouter(
    prefix="/admin/participants", tags=["participants"], dependencies=[Depends(require_admin)]
)

# strpos rather than ILIKE: the search text is matched literally, % and _ included.
SEARCH_WHERE = " WHERE (%(search)s::text IS NULL OR strpos(lower(p.email), lower(%(search)s)) > 0)"


@router.get("/")
async def list_participants(
    conn: DbConn,
    paging: Paging,
    search: Annotated[
        SearchText | None, Query(description="Only participants whose email contains this.")
    ] = None,
) -> Page[ParticipantOut]:
    """Participants by email address, with how many attempts each started."""
    params = {"search": search, "limit": paging.limit, "offset": paging.offset}
    cursor = await conn.execute(
        "SELECT p.id, p.email, p.name, p.created_at,"
        " (SELECT count(*) FROM attempts a WHERE a.participant_id = p.id) AS attempts"
        f" FROM participants p{SEARCH_WHERE}"
        " ORDER BY p.email, p.id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    rows = await cursor.fetchall()
    cursor = await conn.execute(
        f"SELECT count(*) AS total FROM participants p{SEARCH_WHERE}", params
    )
    total = await cursor.fetchone()
    return Page[ParticipantOut](
        items=[ParticipantOut(**row) for row in rows],
        total=total["total"] if total else 0,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/{participant_id}/attempts/")
async def participant_attempts(
    participant_id: uuid.UUID, conn: DbConn, paging: Paging
) -> Page[AttemptLive]:
    """The participant's attempts at every contest, latest start first."""
    cursor = await conn.execute("SELECT 1 FROM participants WHERE id = %s", (participant_id,))
    if await cursor.fetchone() is None:
        raise not_found("participant", participant_id)
    params = {"participant_id": participant_id, "limit": paging.limit, "offset": paging.offset}
    cursor = await conn.execute(
        f"{LIVE_ATTEMPT_SELECT} WHERE a.participant_id = %(participant_id)s"
        " ORDER BY a.started_at DESC, a.id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    rows = await cursor.fetchall()
    cursor = await conn.execute(
        "SELECT count(*) AS total FROM attempts WHERE participant_id = %(participant_id)s", params
    )
    total = await cursor.fetchone()
    now = server_now()
    return Page[AttemptLive](
        items=[live_attempt(row, now) for row in rows],
        total=total["total"] if total else 0,
        limit=paging.limit,
        offset=paging.offset,
    )
