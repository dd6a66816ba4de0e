"""Results, read from the tables the sinks write: leaderboard, attempts and responses.

Read-only: graders may use every route here.
"""

from __future__ import annotations

import uuid

from fastapi import Depends

from api.deps import DbConn, Paging, current_admin
from api.errors import not_found
from api.routing import SlashTolerantRouter
from api.rows import contest_row
from api.schemas import AttemptDetail, AttemptResult, LeaderboardEntry, Page, ResponseOut

# Every route needs an admin token; graders may read results.
router = SlashTolerantRouter(
    prefix="/admin", tags=["results"], dependencies=[Depends(current_admin)]
)

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
        SELECT r.question_id, r.verdict, r.score, r.max_score, r.selected_options, r.text,
               r.saved_at, r.grader_version
        FROM responses r
        LEFT JOIN questions q ON q.id = r.question_id
        WHERE r.attempt_id = %s
        ORDER BY q.position NULLS LAST, q.created_at, r.question_id
        """,
        (attempt_id,),
    )
    responses = [ResponseOut(**row) for row in await cursor.fetchall()]
    return AttemptDetail(**attempt, responses=responses)
