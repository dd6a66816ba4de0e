"""Results, read from the tables the sinks write: leaderboard, attempts, responses and
the CSV export. Admins only: graders see answers in the grading queue, not results.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from fastapi import Depends
from fastapi.responses import StreamingResponse

from api.csv_export import csv_text, header, row_cells
from api.deps import DbConn, Paging, Pool, require_admin
from api.errors import not_found
from api.routing import SlashTolerantRouter
from api.rows import contest_row, question_rows
from api.schemas import AttemptDetail, AttemptResult, LeaderboardEntry, Page, ResponseOut

router = SlashTolerantRouter(
    prefix="/admin", tags=["results"], dependencies=[Depends(require_admin)]
)

# Rows fetched from the server-side cursor at a time: memory stays flat however many
# attempts a contest has.
EXPORT_BATCH = 1_000

# The leaderboard order of streams.rules.ranking.rank, in SQL: `rank()` over its
# `ranking_key` (total desc, then earlier last score change, then earlier start) gives
# the same competition ranks (1, 2, 2, 4), and the attempt id orders tied rows as `rank`
# does: a uuid sorts in Postgres as its canonical lowercase text sorts in Python.
LEADERBOARD_QUERY = """
    SELECT rank() OVER (ORDER BY total_score DESC, score_changed_at, started_at) AS rank,
           attempt_id, participant_name, total_score, score_changed_at, started_at
    FROM leaderboard
    WHERE contest_id = %(contest_id)s AND NOT invalidated
    ORDER BY total_score DESC, score_changed_at, started_at, attempt_id
    LIMIT %(limit)s OFFSET %(offset)s
"""


@router.get("/contests/{contest_id}/leaderboard/")
async def leaderboard(
    contest_id: uuid.UUID, conn: DbConn, paging: Paging
) -> Page[LeaderboardEntry]:
    """The contest's ranked standings; invalidated attempts are left out."""
    await contest_row(conn, contest_id)
    params = {"contest_id": contest_id, "limit": paging.limit, "offset": paging.offset}
    cursor = await conn.execute(LEADERBOARD_QUERY, params)
    rows = await cursor.fetchall()
    cursor = await conn.execute(
        "SELECT count(*) AS total FROM leaderboard"
        " WHERE contest_id = %(contest_id)s AND NOT invalidated",
        params,
    )
    total = await cursor.fetchone()
    return Page[LeaderboardEntry](
        items=[LeaderboardEntry(**row) for row in rows],
        total=total["total"] if total else 0,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/contests/{contest_id}/results/")
async def contest_results(
    contest_id: uuid.UUID, conn: DbConn, paging: Paging
) -> Page[AttemptResult]:
    """Every attempt at the contest with its score and save counts, earliest start first."""
    await contest_row(conn, contest_id)
    params = {"contest_id": contest_id, "limit": paging.limit, "offset": paging.offset}
    cursor = await conn.execute(
        """
        SELECT id AS attempt_id, participant_email, participant_name, status, started_at,
               finished_at, total_score, max_score, late_saves, counted_saves
        FROM attempts
        WHERE contest_id = %(contest_id)s
        ORDER BY started_at, id
        LIMIT %(limit)s OFFSET %(offset)s
        """,
        params,
    )
    rows = await cursor.fetchall()
    cursor = await conn.execute(
        "SELECT count(*) AS total FROM attempts WHERE contest_id = %(contest_id)s", params
    )
    total = await cursor.fetchone()
    return Page[AttemptResult](
        items=[AttemptResult(**row) for row in rows],
        total=total["total"] if total else 0,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/attempts/{attempt_id}/")
async def attempt_detail(attempt_id: uuid.UUID, conn: DbConn) -> AttemptDetail:
    """One attempt with the current grade of each response, in question order."""
    cursor = await conn.execute(
        """
        SELECT id AS attempt_id, contest_id, participant_id, participant_email,
               participant_name, status, started_at, deadline, finished_at, total_score,
               max_score, score_changed_at, counted_saves, late_saves, grader_version,
               graded_at
        FROM attempts
        WHERE id = %s
        """,
        (attempt_id,),
    )
    attempt = await cursor.fetchone()
    if attempt is None:
        raise not_found("attempt", attempt_id)
    cursor = await conn.execute(
        """
        SELECT r.response_id, r.question_id, r.verdict, r.score, r.max_score,
               r.selected_options, r.text, r.saved_at, r.grader_version
        FROM responses r
        LEFT JOIN questions q ON q.id = r.question_id
        WHERE r.attempt_id = %s
        ORDER BY q.position NULLS LAST, q.created_at, r.question_id
        """,
        (attempt_id,),
    )
    responses = [ResponseOut(**row) for row in await cursor.fetchall()]
    return AttemptDetail(**attempt, responses=responses)


# One row per attempt: ranks as on the leaderboard (invalidated attempts have none),
# and each question's score in question order, empty where there is no response yet.
EXPORT_QUERY = """
    WITH ranked AS (
        SELECT attempt_id,
               rank() OVER (ORDER BY total_score DESC, score_changed_at, started_at) AS rank
        FROM leaderboard
        WHERE contest_id = %(contest_id)s AND NOT invalidated
    )
    SELECT a.id AS attempt_id, a.participant_email, a.participant_name, a.status,
           a.started_at, a.finished_at, a.total_score, a.max_score, r.rank,
           a.counted_saves, a.late_saves,
           ARRAY(
               SELECT resp.score
               FROM unnest(%(question_ids)s::uuid[]) WITH ORDINALITY AS q(id, n)
               LEFT JOIN responses resp ON resp.attempt_id = a.id AND resp.question_id = q.id
               ORDER BY q.n
           ) AS scores
    FROM attempts a
    LEFT JOIN ranked r ON r.attempt_id = a.id
    WHERE a.contest_id = %(contest_id)s
    ORDER BY r.rank NULLS LAST, a.started_at, a.id
"""


@router.get(
    "/contests/{contest_id}/export.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per attempt"},
        404: {"description": "No such contest"},
    },
)
async def export_results(contest_id: uuid.UUID, conn: DbConn, pool: Pool) -> StreamingResponse:
    """Every attempt at the contest as CSV, streamed: a header row, then one row per
    attempt in leaderboard order (unranked attempts last) with its score per question.

    Columns: attempt_id, participant_email, participant_name, status, started_at,
    finished_at, total_score, max_score, rank, counted_saves, late_saves, then
    q1_score, q2_score, ... in question position order. Cells that a spreadsheet would
    read as a formula are prefixed with an apostrophe.
    """
    await contest_row(conn, contest_id)
    question_ids = [question["id"] for question in await question_rows(conn, contest_id)]
    params = {"contest_id": contest_id, "question_ids": question_ids}

    async def lines() -> AsyncIterator[str]:
        yield csv_text([header(len(question_ids))])
        # A connection of its own: the route's is handed back before the body streams.
        # A named (server-side) cursor needs a transaction and sends rows in batches.
        async with pool.connection() as export_conn, export_conn.transaction():
            cursor = export_conn.cursor(name=f"export_{uuid.uuid4().hex}")
            async with cursor:
                await cursor.execute(EXPORT_QUERY, params)
                while rows := await cursor.fetchmany(EXPORT_BATCH):
                    yield csv_text(row_cells(row) for row in rows)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="contest-{contest_id}.csv"'},
    )
