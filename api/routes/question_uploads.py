"""Bulk question uploads into a draft contest: a CSV or JSON file, as a multipart
upload (`file` part) or as the raw request body.

Every row is checked before anything is written. One bad row stops the whole import
unless `partial=true`, which imports the good rows and reports the bad ones. Ids are
deterministic (`api.bulk_upload`), so the same file uploaded twice creates nothing the
second time. Formats: docs/bulk-upload.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.responses import Response
from psycopg.types.json import Jsonb

from api.bulk_upload import (
    ParsedUpload,
    RowProblem,
    UploadFileError,
    UploadRow,
    UploadTooLarge,
    multipart_file,
    parse_csv_upload,
    parse_json_upload,
)
from api.definition_rules import requested_answer_key
from api.deps import AdminOnly, DbConn, SettingsDep, require_admin
from api.errors import EscapedJSONResponse, draft_only
from api.routing import SlashTolerantRouter
from api.rows import QUESTION_COLUMNS, Connection, contest_row
from api.schemas import UploadedQuestion, UploadedRow, UploadRejected, UploadReport, UploadRowError

log = logging.getLogger(__name__)

router = SlashTolerantRouter(
    prefix="/admin/questions", tags=["questions"], dependencies=[Depends(require_admin)]
)

Parser = Callable[[bytes, uuid.UUID], ParsedUpload]
# The columns an upload sets; a question whose stored values equal these is unchanged.
UPLOADED_COLUMNS = (
    "kind",
    "prompt",
    "options",
    "correct_options",
    "max_marks",
    "negative_marks",
    "partial_credit",
    "rubric",
    "details",
    "external_id",
)
MULTIPART_FILE_SCHEMA = {
    "type": "object",
    "properties": {"file": {"type": "string", "format": "binary"}},
    "required": ["file"],
}


def _body_docs(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                media_type: {"schema": schema},
                "multipart/form-data": {"schema": MULTIPART_FILE_SCHEMA},
            },
        }
    }


UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such contest"},
    409: {"description": "The contest is published: its questions change only by regrade"},
    413: {"description": "The file is larger than MAX_UPLOAD_BYTES or has too many rows"},
    422: {"model": UploadRejected, "description": "Bad rows or an unreadable file"},
}

ContestQuery = Annotated[uuid.UUID, Query(description="The draft contest to add to.")]
PartialQuery = Annotated[
    bool, Query(description="Import the good rows even when some are bad (reported).")
]


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes, so an
    oversized upload is never held in memory whole."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"the upload is larger than {limit} bytes"
    )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared[:30]) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _stored_values(question: UploadedQuestion) -> dict[str, Any]:
    """The `questions` columns an uploaded question sets (position aside)."""
    content, scoring = question.content, question.scoring
    key = requested_answer_key(content.correct_answer, content.correct_answers)[1]
    return {
        "kind": question.type.value,
        "prompt": content.question,
        "options": content.options,
        "correct_options": sorted(key or []),
        "max_marks": scoring.max_marks,
        "negative_marks": scoring.negative_marks,
        "partial_credit": scoring.partial_credit,
        "rubric": content.rubric,
        "details": None if content.coding is None else content.coding.model_dump(mode="json"),
        "external_id": question.external_id,
    }


def _as_params(values: dict[str, Any]) -> dict[str, Any]:
    details = values["details"]
    return {
        **values,
        "options": Jsonb(values["options"]),
        "correct_options": Jsonb(values["correct_options"]),
        "details": None if details is None else Jsonb(details),
    }


async def _import(
    conn: Connection, contest_id: uuid.UUID, rows: list[UploadRow]
) -> list[UploadedRow]:
    """Create the new questions, update the changed ones; the caller holds the
    contest's lock. A row without `position` appends a new question after the last
    and leaves an existing one where it is."""
    cursor = await conn.execute(
        f"SELECT {QUESTION_COLUMNS} FROM questions WHERE contest_id = %s AND id = ANY(%s)",
        (contest_id, [row.question_id for row in rows]),
    )
    existing = {row["id"]: row for row in await cursor.fetchall()}
    cursor = await conn.execute(
        "SELECT coalesce(max(position) + 1, 0) AS next FROM questions WHERE contest_id = %s",
        (contest_id,),
    )
    next_row = await cursor.fetchone()
    next_position: int = next_row["next"] if next_row else 0
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    outcomes: list[UploadedRow] = []
    for row in rows:
        values = _stored_values(row.question)
        current = existing.get(row.question_id)
        if current is None:
            position = row.question.position
            if position is None:
                position, next_position = next_position, next_position + 1
            inserts.append(
                {
                    **_as_params(values),
                    "id": row.question_id,
                    "contest_id": contest_id,
                    "position": position,
                }
            )
            outcomes.append(
                UploadedRow(row=row.row, question_id=row.question_id, outcome="created")
            )
            continue
        position = current["position"] if row.question.position is None else row.question.position
        stored = {column: current[column] for column in UPLOADED_COLUMNS}
        if stored == values and position == current["position"]:
            outcome = "unchanged"
        else:
            updates.append({**_as_params(values), "id": row.question_id, "position": position})
            outcome = "updated"
        outcomes.append(UploadedRow(row=row.row, question_id=row.question_id, outcome=outcome))
    async with conn.cursor() as cur:
        if inserts:
            await cur.executemany(
                """
                INSERT INTO questions (id, contest_id, kind, prompt, options, correct_options,
                                       max_marks, negative_marks, partial_credit, position,
                                       rubric, details, external_id)
                VALUES (%(id)s, %(contest_id)s, %(kind)s, %(prompt)s, %(options)s,
                        %(correct_options)s, %(max_marks)s, %(negative_marks)s,
                        %(partial_credit)s, %(position)s, %(rubric)s, %(details)s,
                        %(external_id)s)
                """,
                inserts,
            )
        if updates:
            await cur.executemany(
                """
                UPDATE questions
                SET kind = %(kind)s, prompt = %(prompt)s, options = %(options)s,
                    correct_options = %(correct_options)s, max_marks = %(max_marks)s,
                    negative_marks = %(negative_marks)s, partial_credit = %(partial_credit)s,
                    position = %(position)s, rubric = %(rubric)s, details = %(details)s,
                    external_id = %(external_id)s, updated_at = now()
                WHERE id = %(id)s
                """,
                updates,
            )
    return outcomes


def _errors(problems: list[RowProblem]) -> list[UploadRowError]:
    return [UploadRowError(row=p.row, field=p.field, reason=p.reason) for p in problems]


def _rejected(contest_id: uuid.UUID, parsed: ParsedUpload, detail: str) -> Response:
    body = UploadRejected(
        detail=detail,
        contest_id=contest_id,
        rows=parsed.rows,
        created=0,
        updated=0,
        unchanged=0,
        rejected=parsed.rejected_rows,
        questions=[],
        errors=_errors(parsed.problems),
    )
    # Escaped: a JSON upload can put lone surrogates into field names we echo.
    return EscapedJSONResponse(
        body.model_dump(mode="json"), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


async def _upload(
    request: Request,
    parse: Parser,
    contest_id: uuid.UUID,
    partial: bool,
    conn: Connection,
    limit: int,
    admin: str,
) -> Response:
    # Unknown or published contests are refused before the body is read.
    contest = await contest_row(conn, contest_id)
    if contest["status"] != "draft":
        raise draft_only(contest_id)
    data = await _read_capped(request, limit)
    try:
        if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            data = multipart_file(request.headers["content-type"], data)
        parsed = parse(data, contest_id)
    except UploadTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from exc
    except UploadFileError as exc:
        return _rejected(
            contest_id,
            ParsedUpload(problems=exc.problems),
            "the file cannot be read; nothing was imported",
        )
    if not parsed.rows:
        parsed.problems.append(RowProblem(None, None, "the file has no questions"))
        return _rejected(contest_id, parsed, "the file has no questions")
    if parsed.problems and not partial:
        return _rejected(
            contest_id,
            parsed,
            f"{parsed.rejected_rows} of {parsed.rows} rows are invalid; nothing was imported"
            " (partial=true imports the valid rows)",
        )
    outcomes: list[UploadedRow] = []
    if parsed.good:
        async with conn.transaction():
            locked = await contest_row(conn, contest_id, lock=True)
            if locked["status"] != "draft":  # published while the file was read
                raise draft_only(contest_id)
            outcomes = await _import(conn, contest_id, parsed.good)
    report = UploadReport(
        contest_id=contest_id,
        rows=parsed.rows,
        created=sum(o.outcome == "created" for o in outcomes),
        updated=sum(o.outcome == "updated" for o in outcomes),
        unchanged=sum(o.outcome == "unchanged" for o in outcomes),
        rejected=parsed.rejected_rows,
        questions=outcomes,
        errors=_errors(parsed.problems),
    )
    log.info(
        "upload into contest %s by %s: %d created, %d updated, %d unchanged, %d rejected",
        contest_id,
        admin,
        report.created,
        report.updated,
        report.unchanged,
        report.rejected,
        extra={"contest_id": str(contest_id)},
    )
    return EscapedJSONResponse(report.model_dump(mode="json"))


@router.post(
    "/upload/csv",
    response_model=UploadReport,
    responses=UPLOAD_RESPONSES,
    openapi_extra=_body_docs("text/csv", {"type": "string"}),
)
async def upload_csv(
    request: Request,
    contest_id: ContestQuery,
    conn: DbConn,
    settings: SettingsDep,
    admin: AdminOnly,
    partial: PartialQuery = False,
) -> Response:
    """Add questions to a draft contest from a CSV file (UTF-8, a header row, one
    question per row); see docs/bulk-upload.md for the columns."""
    return await _upload(
        request,
        parse_csv_upload,
        contest_id,
        partial,
        conn,
        settings.max_upload_bytes,
        admin.username,
    )


@router.post(
    "/upload/json",
    response_model=UploadReport,
    responses=UPLOAD_RESPONSES,
    openapi_extra=_body_docs(
        "application/json",
        {
            "type": "array",
            "items": {"type": "object"},
            "description": "Question create bodies without contest_id, with an optional"
            " external_id; see docs/bulk-upload.md.",
        },
    ),
)
async def upload_json(
    request: Request,
    contest_id: ContestQuery,
    conn: DbConn,
    settings: SettingsDep,
    admin: AdminOnly,
    partial: PartialQuery = False,
) -> Response:
    """Add questions to a draft contest from a JSON file: a list of question bodies
    (as POST /api/v1/admin/questions/ takes, without contest_id)."""
    return await _upload(
        request,
        parse_json_upload,
        contest_id,
        partial,
        conn,
        settings.max_upload_bytes,
        admin.username,
    )
