"""Running attempts: the invigilator's live list, extra time and invalidation.

Extensions and invalidations go to the stream as attempt events, keyed by attempt, and
are kept in the API's own tables: the stream decides, the tables let the API show a
running attempt's deadline and refuse what cannot apply.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from aiokafka.errors import KafkaError
from fastapi import Depends, Query, status

from api.attempt_events import attempt_invalidated, send_attempt_event, time_extended
from api.definition_rules import FieldProblem
from api.deps import AdminOnly, DbConn, Paging, Producer, SettingsDep, require_admin
from api.errors import KAFKA_DOWN, conflict, kafka_unavailable, not_found, unprocessable
from api.live_attempts import LIVE_ATTEMPT_SELECT, current_deadline, live_attempt
from api.routing import SlashTolerantRouter
from api.rows import Connection, contest_row
from api.schemas import (
    AttemptLive,
    AttemptStatusName,
    ExtensionOut,
    ExtensionRequest,
    InvalidationOut,
    InvalidationRequest,
    Page,
)
from avro_schemas.records import Record
from streams.rules.timing import attempt_deadline, counts_by, server_now

log = logging.getLogger(__name__)

router = SlashTolerantRouter(
    prefix="/admin", tags=["attempts"], dependencies=[Depends(require_admin)]
)


async def _lock_attempt(conn: Connection, attempt_id: uuid.UUID) -> None:
    """Serialise admin actions on one attempt until the transaction ends. An advisory
    lock rather than a row lock, so the sinks' upserts of the row never wait on it."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"attempt:{attempt_id}",)
    )


@router.get("/contests/{contest_id}/attempts/")
async def contest_attempts(
    contest_id: uuid.UUID,
    conn: DbConn,
    paging: Paging,
    status_filter: Annotated[AttemptStatusName | None, Query(alias="status")] = None,
) -> Page[AttemptLive]:
    """The contest's attempts, earliest start first, with live status, deadline, time
    left, granted extensions and counted saves."""
    await contest_row(conn, contest_id)
    params = {
        "contest_id": contest_id,
        "status": status_filter,
        "limit": paging.limit,
        "offset": paging.offset,
    }
    where = (
        " WHERE a.contest_id = %(contest_id)s"
        " AND (%(status)s::text IS NULL OR a.status = %(status)s)"
    )
    cursor = await conn.execute(
        f"{LIVE_ATTEMPT_SELECT}{where}"
        " ORDER BY a.started_at, a.id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    rows = await cursor.fetchall()
    cursor = await conn.execute(f"SELECT count(*) AS total FROM attempts a{where}", params)
    total = await cursor.fetchone()
    now = server_now()
    return Page[AttemptLive](
        items=[live_attempt(row, now) for row in rows],
        total=total["total"] if total else 0,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.post(
    "/attempts/{attempt_id}/extend/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "No such attempt"},
        409: {"description": "The attempt is finished, out of time, or at the contest's end"},
        422: {"description": "More than MAX_TIME_EXTENSION_MINUTES in total"},
        **KAFKA_DOWN,
    },
)
async def extend_attempt(
    attempt_id: uuid.UUID,
    body: ExtensionRequest,
    conn: DbConn,
    producer: Producer,
    settings: SettingsDep,
    admin: AdminOnly,
) -> ExtensionOut:
    """Give a running attempt extra time, within MAX_TIME_EXTENSION_MINUTES in total.

    The deadline never passes the contest's end. Sends a TimeExtended record; the
    answer carries the deadline the stream will apply.
    """
    extra_seconds = body.minutes * 60
    async with conn.transaction():
        await _lock_attempt(conn, attempt_id)
        cursor = await conn.execute(f"{LIVE_ATTEMPT_SELECT} WHERE a.id = %s", (attempt_id,))
        row = await cursor.fetchone()
        if row is None:
            raise not_found("attempt", attempt_id)
        if row["status"] != "active":
            raise conflict(f"attempt {attempt_id} is {row['status']}; only a running one gets time")
        previous = current_deadline(row)
        if previous is None:
            raise conflict(f"attempt {attempt_id} belongs to an unknown contest")
        now = server_now()
        # Past deadline + grace the stream's sweep is expiring the attempt: which of
        # the expiry and the extension it took first would decide the outcome.
        if now > counts_by(previous, settings.grace_seconds):
            raise conflict(
                f"attempt {attempt_id} ran out of time at {previous.isoformat()};"
                " it is being expired"
            )
        granted = int(row["extension_seconds"])
        allowed = settings.max_time_extension_minutes * 60
        if granted + extra_seconds > allowed:
            raise unprocessable(
                [
                    FieldProblem(
                        ("minutes",),
                        f"extensions of one attempt add up to at most"
                        f" {settings.max_time_extension_minutes} minutes; this one has"
                        f" {granted // 60} already, so at most {(allowed - granted) // 60} more",
                    )
                ]
            )
        deadline = attempt_deadline(
            row["started_at"],
            int(row["duration_seconds"]),
            granted + extra_seconds,
            row["contest_end"],
        )
        if deadline <= previous:
            raise conflict(
                f"attempt {attempt_id} already ends with the contest at {previous.isoformat()};"
                " extra time cannot go past it"
            )
        extension_id = uuid.uuid4()
        await conn.execute(
            """
            INSERT INTO attempt_extensions
                (id, attempt_id, contest_id, extra_seconds, reason, admin)
            VALUES (%s, %s, %s, %s, %s, %s)
            """,
            (
                extension_id,
                attempt_id,
                row["contest_id"],
                extra_seconds,
                body.reason,
                admin.username,
            ),
        )
        # Sent inside the transaction: if Kafka refuses, the row is rolled back and the
        # admin retries; the record is never sent without its row being kept.
        try:
            await send_attempt_event(
                producer,
                settings,
                Record.TIME_EXTENDED,
                time_extended(
                    extension_id, attempt_id, row["contest_id"], extra_seconds, admin.username, now
                ),
            )
        except KafkaError as exc:
            log.exception("sending an extension of attempt %s failed", attempt_id)
            raise kafka_unavailable("the extension", exc) from exc
    log.info(
        "attempt %s extended by %d s by %s",
        attempt_id,
        extra_seconds,
        admin.username,
        extra={"contest_id": str(row["contest_id"]), "attempt_id": str(attempt_id)},
    )
    return ExtensionOut(
        extension_id=extension_id,
        attempt_id=attempt_id,
        contest_id=row["contest_id"],
        extra_seconds=extra_seconds,
        total_extension_seconds=granted + extra_seconds,
        previous_deadline=previous,
        deadline=deadline,
        reason=body.reason,
        admin=admin.username,
    )


@router.post(
    "/attempts/{attempt_id}/invalidate/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "No such attempt"},
        409: {"description": "Already invalidated"},
        **KAFKA_DOWN,
    },
)
async def invalidate_attempt(
    attempt_id: uuid.UUID,
    body: InvalidationRequest,
    conn: DbConn,
    producer: Producer,
    settings: SettingsDep,
    admin: AdminOnly,
) -> InvalidationOut:
    """Invalidate an attempt, running or finished: the stream re-emits it with status
    invalidated and the leaderboard leaves it out. Sends an AttemptInvalidated record."""
    async with conn.transaction():
        await _lock_attempt(conn, attempt_id)
        cursor = await conn.execute(
            """
            SELECT a.contest_id, a.status, i.attempt_id IS NOT NULL AS invalidated
            FROM attempts a LEFT JOIN attempt_invalidations i ON i.attempt_id = a.id
            WHERE a.id = %s
            """,
            (attempt_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise not_found("attempt", attempt_id)
        if row["invalidated"] or row["status"] == "invalidated":
            raise conflict(f"attempt {attempt_id} is already invalidated")
        event_id = uuid.uuid4()
        now = server_now()
        await conn.execute(
            """
            INSERT INTO attempt_invalidations
                (attempt_id, id, contest_id, reason, admin, created_at)
            VALUES (%s, %s, %s, %s, %s, %s)
            """,
            (attempt_id, event_id, row["contest_id"], body.reason, admin.username, now),
        )
        # Inside the transaction, as for extensions: no row without its record.
        try:
            await send_attempt_event(
                producer,
                settings,
                Record.ATTEMPT_INVALIDATED,
                attempt_invalidated(
                    event_id, attempt_id, row["contest_id"], body.reason, admin.username, now
                ),
            )
        except KafkaError as exc:
            log.exception("sending the invalidation of attempt %s failed", attempt_id)
            raise kafka_unavailable("the invalidation", exc) from exc
    log.info(
        "attempt %s invalidated by %s",
        attempt_id,
        admin.username,
        extra={"contest_id": str(row["contest_id"]), "attempt_id": str(attempt_id)},
    )
    return InvalidationOut(
        attempt_id=attempt_id,
        contest_id=row["contest_id"],
        event_id=event_id,
        reason=body.reason,
        admin=admin.username,
        invalidated_at=now,
    )
