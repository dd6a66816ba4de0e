"""Contests: create and edit drafts, list and read them, publish them to the streams."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import Depends, HTTPException, Query, status
from psycopg.rows import DictRow

from api.definition_rules import FieldProblem, contest_window_problems, requested_duration
from api.deps import AdminOnly, DbConn, Paging, Producer, SettingsDep, require_admin
from api.errors import conflict, draft_only, unprocessable
from api.publishing import question_messages, send_definitions, too_large_to_publish
from api.routing import SlashTolerantRouter
from api.rows import CONTEST_COLUMNS, contest_row, question_rows
from api.schemas import (
    ContestCreate,
    ContestDetail,
    ContestOut,
    ContestPatch,
    ContestStatus,
    Page,
    QuestionOut,
    SearchText,
    patched,
)

log = logging.getLogger(__name__)

# Admins only: graders may only grade.
router = SlashTolerantRouter(
    prefix="/admin/contests", tags=["contests"], dependencies=[Depends(require_admin)]
)


def _detail(contest: dict[str, Any], questions: list[DictRow]) -> ContestDetail:
    return ContestDetail(**contest, questions=[QuestionOut.from_row(q) for q in questions])


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_contest(body: ContestCreate, conn: DbConn, admin: AdminOnly) -> ContestOut:
    """Create a draft contest."""
    duration_field, duration_seconds, problems = requested_duration(
        body.duration_minutes, body.duration_seconds
    )
    if duration_seconds is None and not problems:
        problems = [
            FieldProblem(("duration_minutes",), "give duration_minutes or duration_seconds")
        ]
    if duration_seconds is not None:
        problems += contest_window_problems(
            body.start_at, body.end_at, duration_seconds, duration_field=duration_field
        )
    if problems:
        raise unprocessable(problems)
    cursor = await conn.execute(
        f"INSERT INTO contests (id, name, description, start_at, end_at, duration_seconds)"
        f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {CONTEST_COLUMNS}",
        (uuid.uuid4(), body.name, body.description, body.start_at, body.end_at, duration_seconds),
    )
    row = await cursor.fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    log.info(
        "contest %s created by %s", row["id"], admin.username, extra={"contest_id": str(row["id"])}
    )
    return ContestOut(**row)


@router.get("/")
async def list_contests(
    conn: DbConn,
    paging: Paging,
    status_filter: Annotated[ContestStatus | None, Query(alias="status")] = None,
    search: Annotated[
        SearchText | None, Query(description="Only contests whose name contains this.")
    ] = None,
) -> Page[ContestOut]:
    """Contests, newest first, optionally only drafts or only published ones, optionally
    only those whose name contains `search` (case-insensitive)."""
    params = {
        "status": status_filter,
        "search": search,
        "limit": paging.limit,
        "offset": paging.offset,
    }
    # strpos rather than ILIKE: the search text is matched literally, % and _ included.
    where = (
        " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        " AND (%(search)s::text IS NULL OR strpos(lower(name), lower(%(search)s)) > 0)"
    )
    cursor = await conn.execute(
        f"SELECT {CONTEST_COLUMNS} FROM contests{where}"
        " ORDER BY created_at DESC, id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    rows = await cursor.fetchall()
    cursor = await conn.execute(f"SELECT count(*) AS total FROM contests{where}", params)
    total = await cursor.fetchone()
    return Page[ContestOut](
        items=[ContestOut(**row) for row in rows],
        total=total["total"] if total else 0,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/{contest_id}/")
async def get_contest(contest_id: uuid.UUID, conn: DbConn) -> ContestDetail:
    """A contest with its questions, answer keys included."""
    contest = await contest_row(conn, contest_id)
    return _detail(contest, await question_rows(conn, contest_id))


@router.patch("/{contest_id}/")
async def update_contest(
    contest_id: uuid.UUID, body: ContestPatch, conn: DbConn, admin: AdminOnly
) -> ContestOut:
    """Change a draft contest. A published one answers 409: changes go through regrade."""
    async with conn.transaction():
        contest = await contest_row(conn, contest_id, lock=True)
        if contest["status"] != "draft":
            raise draft_only(contest_id)
        duration_field, duration_seconds, problems = requested_duration(
            body.duration_minutes, body.duration_seconds
        )
        merged = {
            "name": patched(body.name, contest["name"]),
            "description": patched(body.description, contest["description"]),
            "start_at": patched(body.start_at, contest["start_at"]),
            "end_at": patched(body.end_at, contest["end_at"]),
            "duration_seconds": patched(duration_seconds, contest["duration_seconds"]),
        }
        if not problems:
            problems = contest_window_problems(
                merged["start_at"],
                merged["end_at"],
                merged["duration_seconds"],
                duration_field=duration_field,
            )
        if problems:
            raise unprocessable(problems)
        cursor = await conn.execute(
            "UPDATE contests SET name = %(name)s, description = %(description)s,"
            " start_at = %(start_at)s, end_at = %(end_at)s,"
            " duration_seconds = %(duration_seconds)s, updated_at = now()"
            f" WHERE id = %(id)s RETURNING {CONTEST_COLUMNS}",
            {**merged, "id": contest_id},
        )
        row = await cursor.fetchone()
    assert row is not None  # the row is locked; it cannot have gone
    log.info(
        "contest %s updated by %s",
        contest_id,
        admin.username,
        extra={"contest_id": str(contest_id)},
    )
    return ContestOut(**row)


@router.post(
    "/{contest_id}/publish/",
    responses={
        409: {"description": "The contest has no questions"},
        503: {"description": "Published, but Kafka did not take the definitions; retry"},
    },
)
async def publish_contest(
    contest_id: uuid.UUID,
    conn: DbConn,
    producer: Producer,
    settings: SettingsDep,
    admin: AdminOnly,
) -> ContestDetail:
    """Publish a draft contest and send its definitions to the streams.

    Publishing a published contest sends the same definitions again, which is how a
    publish whose send failed is retried.
    """
    async with conn.transaction():
        contest = await contest_row(conn, contest_id, lock=True)
        questions = await question_rows(conn, contest_id)
        if not questions:
            raise conflict(f"contest {contest_id} has no questions; add at least one to publish")
        too_large = too_large_to_publish(question_messages(questions))
        if too_large:
            # Checked before the commit: a contest published with a definition Kafka
            # refuses would stay published with no way to send it.
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                "cannot publish: " + "; ".join(too_large) + "; shorten these questions",
            )
        if contest["status"] == "draft":
            cursor = await conn.execute(
                "UPDATE contests SET status = 'published',"
                # Milliseconds: what the ContestDefinition's timestamp-millis can hold.
                " published_at = date_trunc('milliseconds', now()),"
                f" updated_at = now() WHERE id = %s RETURNING {CONTEST_COLUMNS}",
                (contest_id,),
            )
            published = await cursor.fetchone()
            assert published is not None  # the row is locked; it cannot have gone
            contest = published
            log.info(
                "contest %s published by %s",
                contest_id,
                admin.username,
                extra={"contest_id": str(contest_id)},
            )
    # Sent after the commit: the definitions only ever describe a committed, published
    # contest. If the send fails the contest stays published and publishing again resends.
    try:
        await send_definitions(producer, settings, contest, questions)
    except KafkaError as exc:
        log.exception("sending definitions of contest %s failed", contest_id)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"contest {contest_id} is published but its definitions could not be sent"
            f" to Kafka ({type(exc).__name__}); publish again to retry",
        ) from exc
    return _detail(contest, questions)
