"""Questions: create, list, edit and delete those of draft contests, answer keys
included; correct those of published contests through a regrade."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import Depends, HTTPException, Query, Response, status
from psycopg.types.json import Jsonb

from api.attempt_events import question_regrade_event_id, regrade_requested, send_attempt_events
from api.definition_rules import (
    RUBRIC_KINDS,
    FieldProblem,
    answer_key_problems,
    coding_problems,
    question_detail_problems,
    requested_answer_key,
)
from api.deps import AdminOnly, DbConn, Paging, Producer, SettingsDep, require_admin
from api.errors import conflict, draft_only, not_found, unprocessable
from api.publishing import question_definition
from api.routing import SlashTolerantRouter
from api.rows import QUESTION_COLUMNS, QUESTION_ORDER, Connection, contest_row
from api.schemas import (
    CodingSpec,
    Page,
    QuestionContentPatch,
    QuestionCreate,
    QuestionOut,
    QuestionPatch,
    QuestionRegrade,
    QuestionRegradeOut,
    QuestionScoringPatch,
    patched,
)
from avro_schemas.records import Record
from avro_schemas.topics import DEFINITIONS
from elevate.kafka import send_record
from streams.rules.scoring import QuestionKind
from streams.rules.timing import server_now

log = logging.getLogger(__name__)

# Admins only: graders may only grade.
router = SlashTolerantRouter(
    prefix="/admin/questions", tags=["questions"], dependencies=[Depends(require_admin)]
)


async def _locked_question(conn: Connection, question_id: uuid.UUID) -> dict[str, Any]:
    """The question's row and its contest's status, both locked; 404 if unknown."""
    columns = ", ".join(f"q.{column.strip()}" for column in QUESTION_COLUMNS.split(","))
    cursor = await conn.execute(
        f"""
        SELECT {columns}, c.status AS contest_status
        FROM questions q JOIN contests c ON c.id = q.contest_id
        WHERE q.id = %s
        FOR UPDATE
        """,
        (question_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        raise not_found("question", question_id)
    return row


async def _locked_draft_question(conn: Connection, question_id: uuid.UUID) -> dict[str, Any]:
    """The question's row, locked with its contest's: 404 if unknown, 409 if published."""
    row = await _locked_question(conn, question_id)
    if row["contest_status"] != "draft":
        raise draft_only(row["contest_id"])
    return row


def _details(coding: CodingSpec | None) -> Jsonb | None:
    """The `details` cell of a question with these coding details."""
    return None if coding is None else Jsonb(coding.model_dump(mode="json"))


def _stored_coding(row: dict[str, Any]) -> CodingSpec | None:
    details = row["details"]
    return None if details is None else CodingSpec.model_validate(details)


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
    problems += question_detail_problems(body.type, content.rubric, content.coding)
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
                                   max_marks, negative_marks, partial_credit, position,
                                   rubric, details)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
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
                content.rubric,
                _details(content.coding),
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
    fit the new options. `content.coding` replaces the coding details whole. Changing
    the type drops the rubric or coding details the new type cannot have.
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
        # What the old kind alone could have is kept only while the kind allows it; a
        # value given in this request is checked against the new kind instead.
        rubric = content.rubric
        if rubric is None and kind in RUBRIC_KINDS:
            rubric = current["rubric"]
        coding = content.coding
        if coding is None and kind == QuestionKind.CODING:
            coding = _stored_coding(current)
        if not problems:
            problems = answer_key_problems(
                kind,
                merged["options"],
                merged["correct_options"],
                partial_credit=merged["partial_credit"],
                key_field=key_field,
            )
        problems += question_detail_problems(kind, rubric, coding)
        if problems:
            raise unprocessable(problems)
        cursor = await conn.execute(
            f"""
            UPDATE questions
            SET kind = %(kind)s, prompt = %(prompt)s, options = %(options)s,
                correct_options = %(correct_options)s, max_marks = %(max_marks)s,
                negative_marks = %(negative_marks)s, partial_credit = %(partial_credit)s,
                position = %(position)s, rubric = %(rubric)s, details = %(details)s,
                updated_at = now()
            WHERE id = %(id)s
            RETURNING {QUESTION_COLUMNS}
            """,
            {
                **merged,
                "options": Jsonb(merged["options"]),
                "correct_options": Jsonb(merged["correct_options"]),
                "rubric": rubric,
                "details": _details(coding),
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


def _without_content(problems: Sequence[FieldProblem]) -> list[FieldProblem]:
    """Problems found by the create rules, placed in a regrade body, where the key and
    the coding details sit at the top level rather than under `content`."""
    return [
        FieldProblem(p.loc[1:], p.message) if p.loc[:1] == ("content",) else p for p in problems
    ]


@router.post(
    "/{question_id}/regrade/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {"description": "The question's contest is a draft: edit it with PATCH"},
        503: {"description": "Saved, but Kafka did not take the records; send it again"},
    },
)
async def regrade_question(
    question_id: uuid.UUID,
    body: QuestionRegrade,
    conn: DbConn,
    producer: Producer,
    settings: SettingsDep,
    admin: AdminOnly,
) -> QuestionRegradeOut:
    """Correct a published question's answer key (or a coding question's tests) and
    grade every finished attempt of its contest again.

    The question's revision goes up only when the correction changes something, then
    its QuestionDefinition is sent again and a RegradeRequested for each finished
    attempt. The same correction sent twice sends the same records again (ids derive
    from attempt, question and revision), which changes nothing downstream and is how
    a send that failed is retried.
    """
    async with conn.transaction():
        current = await _locked_question(conn, question_id)
        if current["contest_status"] != "published":
            raise conflict(
                f"contest {current['contest_id']} is a draft; edit its questions with PATCH"
            )
        kind = QuestionKind(current["kind"])
        key_field, key, key_problems = requested_answer_key(
            body.correct_answer, body.correct_answers
        )
        problems = _without_content(key_problems)
        if key is None and body.coding is None and not problems:
            problems = [
                FieldProblem(
                    ("correct_answers",),
                    "give the corrected key (correct_answer or correct_answers) or, for a"
                    " coding question, corrected tests (coding)",
                )
            ]
        new_key = sorted(key) if key is not None else list(current["correct_options"])
        coding = _stored_coding(current)
        if body.coding is not None:
            if coding is None:
                problems.append(
                    FieldProblem(("coding",), f"tests are only for coding questions, not {kind}")
                )
            else:
                coding = CodingSpec.model_validate(
                    {**coding.model_dump(), **body.coding.model_dump(exclude_unset=True)}
                )
                problems += _without_content(coding_problems(coding))
        if key is not None and not problems:
            problems = _without_content(
                answer_key_problems(
                    kind,
                    current["options"],
                    new_key,
                    partial_credit=current["partial_credit"],
                    key_field=key_field,
                )
            )
        if problems:
            raise unprocessable(problems)
        new_details = None if coding is None else coding.model_dump(mode="json")
        changed = new_key != current["correct_options"] or new_details != current["details"]
        row = current
        if changed:
            cursor = await conn.execute(
                f"""
                UPDATE questions
                SET correct_options = %s, details = %s, revision = revision + 1,
                    updated_at = now()
                WHERE id = %s
                RETURNING {QUESTION_COLUMNS}
                """,
                (Jsonb(new_key), None if new_details is None else Jsonb(new_details), question_id),
            )
            updated = await cursor.fetchone()
            assert updated is not None  # the row is locked; it cannot have gone
            row = updated
            log.info(
                "question %s corrected by %s (revision %d)",
                question_id,
                admin.username,
                row["revision"],
                extra={"contest_id": str(row["contest_id"])},
            )
    cursor = await conn.execute(
        "SELECT id FROM attempts WHERE contest_id = %s AND status <> 'active' ORDER BY id",
        (row["contest_id"],),
    )
    finished = [attempt["id"] for attempt in await cursor.fetchall()]
    now = server_now()
    reason = body.reason or f"question {question_id} corrected (revision {row['revision']})"
    # Sent after the commit, the definition first, so that the stream holds the
    # corrected key by the time (in most cases) it takes the regrade requests.
    try:
        await send_record(
            producer,
            settings,
            DEFINITIONS,
            Record.QUESTION_DEFINITION,
            question_definition(row),
            str(question_id),
        )
        sent = await send_attempt_events(
            producer,
            settings,
            Record.REGRADE_REQUESTED,
            (
                regrade_requested(
                    question_regrade_event_id(attempt_id, question_id, row["revision"]),
                    attempt_id,
                    row["contest_id"],
                    reason,
                    admin.username,
                    now,
                    question_id,
                    row["revision"],
                )
                for attempt_id in finished
            ),
        )
    except KafkaError as exc:
        log.exception("sending the regrade of question %s failed", question_id)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"question {question_id} is saved at revision {row['revision']} but the regrade"
            f" could not be sent to Kafka ({type(exc).__name__}); send the same request"
            " again to retry",
        ) from exc
    log.info(
        "regrade of question %s requested for %d attempts",
        question_id,
        sent,
        extra={"contest_id": str(row["contest_id"])},
    )
    return QuestionRegradeOut(
        question=QuestionOut.from_row(row), revision_changed=changed, regrades_requested=sent
    )
