"""Questions of draft contests: create, list, edit and delete, answer keys included."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Response, status
from psycopg.types.json import Jsonb

from api.definition_rules import answer_key_problems, requested_answer_key
from api.deps import AdminOnly, DbConn, Paging, current_admin
from api.errors import draft_only, not_found, unprocessable
from api.routing import SlashTolerantRouter
from api.rows import QUESTION_COLUMNS, QUESTION_ORDER, Connection, contest_row
from api.schemas import (
    Page,
    QuestionContentPatch,
    QuestionCreate,
    QuestionOut,
    QuestionPatch,
    QuestionScoringPatch,
    patched,
)
from streams.rules.scoring import QuestionKind

log = logging.getLogger(__name__)

# Every route needs an admin token of either role; writes also take AdminOnly.
router = SlashTolerantRouter(
    prefix="/admin/questions", tags=["questions"], dependencies=[Depends(current_admin)]
)


async def _locked_draft_question(conn: Connection, question_id: uuid.UUID) -> dict[str, Any]:
    """The question's row, locked with its contest's: 404 if unknown, 409 if published."""
    cursor = await conn.execute(
        """
        SELECT q.id, q.contest_id, q.kind, q.prompt, q.options, q.correct_options,
               q.max_marks, q.negative_marks, q.partial_credit, q.position, q.revision,
               q.created_at, q.updated_at, c.status AS contest_status
        FROM questions q JOIN contests c ON c.id = q.contest_id
        WHERE q.id = %s
        FOR UPDATE
        """,
        (question_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        raise not_found("question", question_id)
    if row["contest_status"] != "draft":
        raise draft_only(row["contest_id"])
    return row


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_question(body: QuestionCreate, conn: DbConn, admin: AdminOnly) -> QuestionOut:
    """Add a question to a draft contest, at `position` or after the last one."""
    content, scoring = body.content, body.scoring
    key_field, key, problems = requested_answer_key(content.correct_answer, content.correct_answers)
    if not problems:
        problems = answer_key_problems(
            body.type,
            content.options,
            key or [],
            partial_credit=scoring.partial_credit,
            key_field=key_field,
        )
    if problems:
        raise unprocessable(problems)
    async with conn.transaction():
        # Locking the contest keeps a concurrent publish from missing this question and
        # concurrent appends from taking the same position.
        contest = await contest_row(conn, body.contest_id, lock=True)
        if contest["status"] != "draft":
            raise draft_only(body.contest_id)
        position = body.position
        if position is None:
            cursor = await conn.execute(
                "SELECT coalesce(max(position) + 1, 0) AS next FROM questions"
                " WHERE contest_id = %s",
                (body.contest_id,),
            )
            next_row = await cursor.fetchone()
            position = next_row["next"] if next_row else 0
        cursor = await conn.execute(
            f"""
            INSERT INTO questions (id, contest_id, kind, prompt, options, correct_options,
                                   max_marks, negative_marks, partial_credit, position)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            RETURNING {QUESTION_COLUMNS}
            """,
            (
                uuid.uuid4(),
                body.contest_id,
                body.type.value,
                content.question,
                Jsonb(content.options),
                Jsonb(sorted(key or [])),
                scoring.max_marks,
                scoring.negative_marks,
                scoring.partial_credit,
                position,
            ),
        )
        row = await cursor.fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    log.info(
        "question %s added to contest %s by %s",
        row["id"],
        body.contest_id,
        admin.username,
        extra={"contest_id": str(body.contest_id)},
    )
    return QuestionOut.from_row(row)


@router.get("/")
async def list_questions(
    conn: DbConn,
    paging: Paging,
    contest_id: Annotated[uuid.UUID | None, Query(description="Only this contest's.")] = None,
) -> Page[QuestionOut]:
    """Questions with their answer keys, by contest and then position."""
    if contest_id is not None:
        await contest_row(conn, contest_id)  # 404 for an unknown contest, not an empty page
    params = {"contest_id": contest_id, "limit": paging.limit, "offset": paging.offset}
    cursor = await conn.execute(
        f"SELECT {QUESTION_COLUMNS} FROM questions"
        " WHERE (%(contest_id)s::uuid IS NULL OR contest_id = %(contest_id)s)"
        f" ORDER BY contest_id, {QUESTION_ORDER} LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    rows = await cursor.fetchall()
    cursor = await conn.execute(
        "SELECT count(*) AS total FROM questions"
        " WHERE (%(contest_id)s::uuid IS NULL OR contest_id = %(contest_id)s)",
        params,
    )
    total = await cursor.fetchone()
    return Page[QuestionOut](
        items=[QuestionOut.from_row(row) for row in rows],
        total=total["total"] if total else 0,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/{question_id}/")
async def get_question(question_id: uuid.UUID, conn: DbConn) -> QuestionOut:
    """One question with its answer key."""
    cursor = await conn.execute(
        f"SELECT {QUESTION_COLUMNS} FROM questions WHERE id = %s", (question_id,)
    )
    row = await cursor.fetchone()
    if row is None:
        raise not_found("question", question_id)
    return QuestionOut.from_row(row)


@router.patch("/{question_id}/")
async def update_question(
    question_id: uuid.UUID, body: QuestionPatch, conn: DbConn, admin: AdminOnly
) -> QuestionOut:
    """Change a question of a draft contest; the result must be a valid question.

    `content` and `scoring` are merged field by field. A new answer key replaces the
    old one; changing the options without the key keeps the old key, which must still
    fit the new options.
    """
    async with conn.transaction():
        current = await _locked_draft_question(conn, question_id)
        content = body.content or QuestionContentPatch()
        scoring = body.scoring or QuestionScoringPatch()
        kind = patched(body.type, QuestionKind(current["kind"]))
        key_field, key, problems = requested_answer_key(
            content.correct_answer, content.correct_answers
        )
        merged: dict[str, Any] = {
            "kind": kind.value,
            "prompt": patched(content.question, current["prompt"]),
            "options": patched(content.options, current["options"]),
            "correct_options": sorted(patched(key, current["correct_options"])),
            "max_marks": patched(scoring.max_marks, current["max_marks"]),
            "negative_marks": patched(scoring.negative_marks, current["negative_marks"]),
            "partial_credit": patched(scoring.partial_credit, current["partial_credit"]),
            "position": patched(body.position, current["position"]),
        }
        if not problems:
            problems = answer_key_problems(
                kind,
                merged["options"],
                merged["correct_options"],
                partial_credit=merged["partial_credit"],
                key_field=key_field,
            )
        if problems:
            raise unprocessable(problems)
        cursor = await conn.execute(
            f"""
            UPDATE questions
            SET kind = %(kind)s, prompt = %(prompt)s, options = %(options)s,
                correct_options = %(correct_options)s, max_marks = %(max_marks)s,
                negative_marks = %(negative_marks)s, partial_credit = %(partial_credit)s,
                position = %(position)s, updated_at = now()
            WHERE id = %(id)s
            RETURNING {QUESTION_COLUMNS}
            """,
            {
                **merged,
                "options": Jsonb(merged["options"]),
                "correct_options": Jsonb(merged["correct_options"]),
                "id": question_id,
            },
        )
        row = await cursor.fetchone()
    assert row is not None  # the row is locked; it cannot have gone
    log.info(
        "question %s updated by %s",
        question_id,
        admin.username,
        extra={"contest_id": str(row["contest_id"])},
    )
    return QuestionOut.from_row(row)


@router.delete("/{question_id}/", status_code=status.HTTP_204_NO_CONTENT)
async def delete_question(question_id: uuid.UUID, conn: DbConn, admin: AdminOnly) -> Response:
    """Delete a question of a draft contest."""
    async with conn.transaction():
        current = await _locked_draft_question(conn, question_id)
        await conn.execute("DELETE FROM questions WHERE id = %s", (question_id,))
    log.info(
        "question %s deleted by %s",
        question_id,
        admin.username,
        extra={"contest_id": str(current["contest_id"])},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
