"""Manual grading and regrades. Graders may use the pending list and give grades, and
nothing else in the API; asking for a regrade is for admins.

A response's id is uuid5(RESPONSE_NAMESPACE, "<attempt_id>/<question_id>"), stored by
Postgres as `responses.response_id` (migration 0002), so every listing of responses
carries it and a grade finds its response by index.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from aiokafka.errors import KafkaError
from fastapi import Depends, Query, status

from api.attempt_events import (
    manual_grade_given,
    regrade_requested,
    send_attempt_event,
)
from api.definition_rules import FieldProblem
from api.deps import AdminOnly, CurrentAdmin, DbConn, Paging, Producer, SettingsDep, current_admin
from api.errors import KAFKA_DOWN, conflict, kafka_unavailable, not_found, unprocessable
from api.routing import SlashTolerantRouter
from api.schemas import (
    AttemptRegradeOut,
    ManualGradeOut,
    ManualGradeRequest,
    Page,
    PendingResponse,
    RegradeRequest,
)
from avro_schemas.records import Record
from streams.rules.timing import server_now

log = logging.getLogger(__name__)

# The namespace of response ids; migration 0002 computes the same uuid5 in Postgres.
RESPONSE_NAMESPACE = uuid.UUID("f3b7c0a2-5d1e-4c8b-9a6f-2e4d8c1b7a90")

# Graders and admins alike; the regrade route also takes AdminOnly.
router = SlashTolerantRouter(
    prefix="/admin/grading", tags=["grading"], dependencies=[Depends(current_admin)]
)

# Oldest finished attempt first, so the backlog is worked in the order candidates
# finished. A response a grader has already graded leaves the list at once, before the
# stream's new verdict reaches the table.
PENDING_WHERE = """
    WHERE r.verdict = 'pending_manual'
      AND (%(contest_id)s::uuid IS NULL OR r.contest_id = %(contest_id)s)
      AND NOT EXISTS (
          SELECT 1 FROM manual_grades m
          WHERE m.attempt_id = r.attempt_id AND m.question_id = r.question_id
      )
"""


def response_id_for(attempt_id: uuid.UUID, question_id: uuid.UUID) -> uuid.UUID:
    """The stable id of one attempt's response to one question."""
    return uuid.uuid5(RESPONSE_NAMESPACE, f"{attempt_id}/{question_id}")


@router.get("/pending/")
async def pending_responses(
    conn: DbConn,
    paging: Paging,
    contest_id: Annotated[uuid.UUID | None, Query(description="Only this contest's.")] = None,
) -> Page[PendingResponse]:
    """Responses waiting for a grader, oldest finished attempt first, with the question's
    prompt, rubric and marks and the candidate's answer (but not who they are)."""
    params = {"contest_id": contest_id, "limit": paging.limit, "offset": paging.offset}
    cursor = await conn.execute(
        f"""
        SELECT r.response_id, r.attempt_id, r.contest_id, r.question_id,
               q.kind AS question_kind, q.prompt, q.rubric, r.text AS answer_text,
               s.language, q.max_marks, r.saved_at, a.finished_at
        FROM responses r
        JOIN questions q ON q.id = r.question_id
        LEFT JOIN attempts a ON a.id = r.attempt_id
        LEFT JOIN LATERAL (
            SELECT language FROM answer_saves s
            WHERE s.attempt_id = r.attempt_id AND s.question_id = r.question_id
              AND s.client_seq = r.client_seq AND s.status = 'counted'
            LIMIT 1
        ) s ON true
        {PENDING_WHERE}
        ORDER BY a.finished_at NULLS LAST, r.attempt_id, q.position, q.created_at, r.question_id
        LIMIT %(limit)s OFFSET %(offset)s
        """,
        params,
    )
    rows = await cursor.fetchall()
    cursor = await conn.execute(
        f"SELECT count(*) AS total FROM responses r {PENDING_WHERE}", params
    )
    total = await cursor.fetchone()
    return Page[PendingResponse](
        items=[PendingResponse(**row) for row in rows],
        total=total["total"] if total else 0,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.post(
    "/responses/{response_id}/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "No such response"},
        409: {"description": "The attempt is still running"},
        422: {"description": "Score outside 0..max marks"},
        **KAFKA_DOWN,
    },
)
async def grade_response(
    response_id: uuid.UUID,
    body: ManualGradeRequest,
    conn: DbConn,
    producer: Producer,
    settings: SettingsDep,
    grader: CurrentAdmin,
) -> ManualGradeOut:
    """Score one response of a finished attempt by hand (a subjective or coding answer,
    or an override). Sends a ManualGradeGiven record; the stream re-scores the attempt
    and the sinks update the response, the attempt and the leaderboard. The latest
    grade of a response wins."""
    async with conn.transaction():
        cursor = await conn.execute(
            """
            SELECT r.attempt_id, r.question_id, r.contest_id, a.status, q.max_marks
            FROM responses r
            JOIN questions q ON q.id = r.question_id
            LEFT JOIN attempts a ON a.id = r.attempt_id
            WHERE r.response_id = %s
            """,
            (response_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise not_found("response", response_id)
        if row["status"] in (None, "active"):
            raise conflict(f"attempt {row['attempt_id']} is not finished; grade it afterwards")
        max_marks = float(row["max_marks"])
        if body.score > max_marks:
            raise unprocessable(
                [FieldProblem(("score",), f"score must be between 0 and {max_marks:g}")]
            )
        event_id = uuid.uuid4()
        now = server_now()
        await conn.execute(
            """
            INSERT INTO manual_grades (id, response_id, attempt_id, question_id, contest_id,
                                       score, comment, grader, grader_id, graded_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                event_id,
                response_id,
                row["attempt_id"],
                row["question_id"],
                row["contest_id"],
                body.score,
                body.comment,
                grader.username,
                grader.id,
                now,
            ),
        )
        # Inside the transaction: a grade is kept only if the stream got it.
        try:
            await send_attempt_event(
                producer,
                settings,
                Record.MANUAL_GRADE_GIVEN,
                manual_grade_given(
                    event_id,
                    row["attempt_id"],
                    row["contest_id"],
                    row["question_id"],
                    body.score,
                    body.comment,
                    grader.username,
                    now,
                ),
            )
        except KafkaError as exc:
            log.exception("sending a grade of response %s failed", response_id)
            raise kafka_unavailable("the grade", exc) from exc
    log.info(
        "response %s graded %s by %s",
        response_id,
        body.score,
        grader.username,
        extra={"contest_id": str(row["contest_id"]), "attempt_id": str(row["attempt_id"])},
    )
    return ManualGradeOut(
        response_id=response_id,
        event_id=event_id,
        attempt_id=row["attempt_id"],
        contest_id=row["contest_id"],
        question_id=row["question_id"],
        score=body.score,
        max_score=max_marks,
        comment=body.comment,
        grader=grader.username,
        graded_at=now,
    )


@router.post(
    "/regrade/{attempt_id}/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "No such attempt"},
        409: {"description": "The attempt is still running"},
        **KAFKA_DOWN,
    },
)
async def regrade_attempt(
    attempt_id: uuid.UUID,
    conn: DbConn,
    producer: Producer,
    settings: SettingsDep,
    admin: AdminOnly,
    body: RegradeRequest | None = None,
) -> AttemptRegradeOut:
    """Grade a finished attempt again with the current answer keys. Sends a
    RegradeRequested record; a regrade whose inputs did not change changes nothing."""
    cursor = await conn.execute(
        "SELECT contest_id, status FROM attempts WHERE id = %s", (attempt_id,)
    )
    row = await cursor.fetchone()
    if row is None:
        raise not_found("attempt", attempt_id)
    if row["status"] == "active":
        raise conflict(f"attempt {attempt_id} is still running; it is graded when it finishes")
    reason = body.reason if body is not None else ""
    event_id = uuid.uuid4()
    try:
        await send_attempt_event(
            producer,
            settings,
            Record.REGRADE_REQUESTED,
            regrade_requested(
                event_id, attempt_id, row["contest_id"], reason, admin.username, server_now()
            ),
        )
    except KafkaError as exc:
        log.exception("sending a regrade of attempt %s failed", attempt_id)
        raise kafka_unavailable("the regrade", exc) from exc
    log.info(
        "regrade of attempt %s requested by %s",
        attempt_id,
        admin.username,
        extra={"contest_id": str(row["contest_id"]), "attempt_id": str(attempt_id)},
    )
    return AttemptRegradeOut(
        attempt_id=attempt_id,
        contest_id=row["contest_id"],
        event_id=event_id,
        reason=reason,
        admin=admin.username,
    )
