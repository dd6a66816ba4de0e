"""Reading `contests` and `questions` rows: the SQL several routes share."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from api.errors import not_found

Connection = AsyncConnection[DictRow]

CONTEST_COLUMNS = (
    "id, name, description, start_at, end_at, duration_seconds, status, published_at,"
    " revision, created_at, updated_at"
)
QUESTION_COLUMNS = (
    "id, contest_id, kind, prompt, options, correct_options, max_marks, negative_marks,"
    " partial_credit, position, revision, rubric, details, external_id, created_at, updated_at"
)
# The order questions are shown and published in; `api.publishing.question_order` is
# the same order in Python.
QUESTION_ORDER = "position, created_at, id"


async def contest_row(conn: Connection, contest_id: uuid.UUID, *, lock: bool = False) -> DictRow:
    """The contest's row, locked against concurrent edits if `lock`; 404 if unknown."""
    query = f"SELECT {CONTEST_COLUMNS} FROM contests WHERE id = %s"
    if lock:
        query += " FOR UPDATE"
    cursor = await conn.execute(query, (contest_id,))
    row = await cursor.fetchone()
    if row is None:
        raise not_found("contest", contest_id)
    return row


async def question_rows(conn: Connection, contest_id: uuid.UUID) -> list[DictRow]:
    """The contest's questions in position order."""
    cursor = await conn.execute(
        f"SELECT {QUESTION_COLUMNS} FROM questions WHERE contest_id = %s ORDER BY {QUESTION_ORDER}",
        (contest_id,),
    )
    return await cursor.fetchall()
