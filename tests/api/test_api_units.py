"""The API's pure parts, without services: rules, definition records, tokens, routing."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.attempt_events import (
    attempt_invalidated,
    manual_grade_given,
    question_regrade_event_id,
    regrade_requested,
    time_extended,
)
from api.bulk_upload import (
    UPLOAD_NAMESPACE,
    UploadFileError,
    csv_field,
    csv_item,
    decode_utf8,
    multipart_file,
    parse_csv_upload,
    parse_json_upload,
)
from api.csv_export import ATTEMPT_COLUMNS, csv_text, header, row_cells, safe_cell
from api.definition_rules import (
    answer_key_problems,
    coding_problems,
    contest_window_problems,
    requested_answer_key,
    requested_duration,
)
from api.live_attempts import current_deadline, seconds_left
from api.publishing import (
    contest_definition,
    definition_messages,
    question_definition,
    question_messages,
    too_large_to_publish,
)
from api.routes.grading import RESPONSE_NAMESPACE, response_id_for
from api.routing import SlashTolerantRouter
from api.schemas import CodingSpec
from api.security import (
    InvalidTokenError,
    decode_access_token,
    hash_password,
    issue_access_token,
    new_refresh_token,
    refresh_token_hash,
    verify_password,
)
from avro_schemas.codec import decode, encode
from avro_schemas.records import Record
from elevate.settings import Settings
from streams.rules.scoring import QuestionKind, answer_shape_error

T0 = datetime(2024, 11, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "options", "key"),
    [
        (QuestionKind.MCQ_SINGLE, ["a", "b"], [1]),
        (QuestionKind.MCQ_MULTI, ["a", "b", "c"], [0, 2]),
        (QuestionKind.MCQ_MULTI, ["a", "b"], [0, 1]),
        (QuestionKind.SUBJECTIVE, [], []),
        (QuestionKind.CODING, [], []),
    ],
)
def test_accepted_keys_are_answers_the_grader_accepts(
    kind: QuestionKind, options: list[str], key: list[int]
) -> None:
    assert answer_key_problems(kind, options, key) == []
    if key:
        assert answer_shape_error(kind, len(options), key) is None


@pytest.mark.parametrize(
    ("kind", "options", "key", "partial", "where"),
    [
        (QuestionKind.MCQ_SINGLE, ["a"], [0], False, ("content", "options")),
        (QuestionKind.MCQ_SINGLE, ["a", "b"], [], False, ("content", "correct_answers")),
        (QuestionKind.MCQ_SINGLE, ["a", "b"], [0, 1], False, ("content", "correct_answers")),
        (QuestionKind.MCQ_SINGLE, ["a", "b"], [5], False, ("content", "correct_answers")),
        (QuestionKind.MCQ_SINGLE, ["a", "b"], [0], True, ("scoring", "partial_credit")),
        (QuestionKind.MCQ_MULTI, ["a", "b"], [], False, ("content", "correct_answers")),
        (QuestionKind.MCQ_MULTI, ["a", "b"], [0, 0], False, ("content", "correct_answers")),
        (QuestionKind.CODING, ["a"], [], False, ("content", "options")),
        (QuestionKind.SUBJECTIVE, [], [0], False, ("content", "correct_answers")),
    ],
)
def test_rejected_keys_name_the_field(
    kind: QuestionKind,
    options: list[str],
    key: list[int],
    partial: bool,
    where: tuple[str, ...],
) -> None:
    problems = answer_key_problems(kind, options, key, partial_credit=partial)

    assert where in [p.loc for p in problems]


def test_contest_window_rules() -> None:
    two_hours = T0 + timedelta(hours=2)

    assert contest_window_problems(T0, two_hours, 7200) == []
    assert [p.loc for p in contest_window_problems(T0, T0, 60)] == [("end_at",)]
    too_long = contest_window_problems(T0, two_hours, 7260, duration_field="duration_minutes")
    assert [p.loc for p in too_long] == [("duration_minutes",)]
    assert "121 minutes" in too_long[0].message and "120 minutes" in too_long[0].message


def test_requested_duration_and_answer_key() -> None:
    assert requested_duration(2, None) == ("duration_minutes", 120, [])
    assert requested_duration(None, 90) == ("duration_seconds", 90, [])
    assert requested_duration(None, None) == ("duration_seconds", None, [])
    assert requested_duration(2, 90)[2][0].loc == ("duration_seconds",)
    assert requested_answer_key(1, None) == ("correct_answer", [1], [])
    assert requested_answer_key(None, [0, 2]) == ("correct_answers", [0, 2], [])
    assert requested_answer_key(1, [1])[2][0].message.endswith("not both")


def _question(position: int, created_min: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "contest_id": uuid.UUID(int=1),
        "kind": "mcq_multi",
        "prompt": "Pick",
        "options": ["a", "b", "c"],
        "correct_options": [0, 2],
        "max_marks": 4.0,
        "negative_marks": 1.0,
        "partial_credit": True,
        "position": position,
        "revision": 1,
        "created_at": T0 + timedelta(minutes=created_min),
        **fields,
    }


CONTEST = {
    "id": uuid.UUID(int=1),
    "name": "Finals",
    "description": "",
    "start_at": T0,
    "end_at": T0 + timedelta(hours=2),
    "duration_seconds": 3600,
    "published_at": T0 - timedelta(days=1),
    "revision": 1,
}


def test_definition_messages_put_questions_first_in_position_order() -> None:
    later, first, tied_older, tied_newer = (
        _question(5, 0),
        _question(0, 9),
        _question(2, 1),
        _question(2, 2),
    )

    messages = definition_messages(CONTEST, [later, tied_newer, first, tied_older])

    order = [first, tied_older, tied_newer, later]
    assert [m.record for m in messages] == [Record.QUESTION_DEFINITION] * 4 + [
        Record.CONTEST_DEFINITION
    ]
    assert [m.key for m in messages] == [str(q["id"]) for q in order] + [str(CONTEST["id"])]
    assert messages[-1].value["question_ids"] == [str(q["id"]) for q in order]


def test_definitions_fit_their_avro_schemas() -> None:
    question = _question(0, 0)

    decoded_question = decode(encode(Record.QUESTION_DEFINITION, question_definition(question)))
    decoded_contest = decode(
        encode(Record.CONTEST_DEFINITION, contest_definition(CONTEST, [question]))
    )

    sent = question_definition(question)
    # Newer schema versions may add fields (with defaults); what was sent comes back.
    assert {name: decoded_question.value[name] for name in sent} == sent
    assert decoded_contest.value["published_at"] == CONTEST["published_at"]
    assert decoded_contest.value["question_ids"] == [str(question["id"])]


def test_a_definition_kafka_would_refuse_is_named_before_publishing() -> None:
    fits = _question(0, 0)
    huge = _question(1, 0, prompt="x" * (24 * 1024 * 1024))
    assert too_large_to_publish(question_messages([fits])) == []
    (problem,) = too_large_to_publish(question_messages([fits, huge]))
    assert str(huge["id"]) in problem and "bytes" in problem


def test_unpublished_contest_has_no_definition() -> None:
    with pytest.raises(ValueError, match="not published"):
        contest_definition({**CONTEST, "published_at": None}, [])


SETTINGS = Settings(SECRET_KEY="unit-test-secret-0123456789abcdef0123", ADMIN_TOKEN_MINUTES=5)


def test_access_token_round_trip() -> None:
    admin_id = uuid.uuid4()

    issued = issue_access_token(SETTINGS, admin_id, "grader")
    claims = decode_access_token(SETTINGS, issued.token)

    assert (claims.admin_id, claims.role) == (admin_id, "grader")
    assert issued.expires_in == 300


def test_expired_and_foreign_tokens_are_refused() -> None:
    old = issue_access_token(SETTINGS, uuid.uuid4(), "admin", now=T0)
    other = Settings(SECRET_KEY="another-secret-0123456789abcdef012345")
    foreign = issue_access_token(other, uuid.uuid4(), "admin")

    with pytest.raises(InvalidTokenError, match="expired"):
        decode_access_token(SETTINGS, old.token)
    with pytest.raises(InvalidTokenError, match="invalid"):
        decode_access_token(SETTINGS, foreign.token)


def test_password_hashes() -> None:
    stored = hash_password("correct horse")

    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong horse")
    assert not verify_password(None, "correct horse")
    assert not verify_password("not-an-argon2-hash", "correct horse")


async def test_router_answers_both_slash_forms_and_documents_one() -> None:
    router = SlashTolerantRouter(prefix="/things")

    @router.get("/{thing_id}/")
    async def get_thing(thing_id: int) -> int:
        return thing_id

    app = FastAPI(redirect_slashes=False)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with_slash = await client.get("/things/7/")
        without_slash = await client.get("/things/7")

    assert (with_slash.status_code, with_slash.json()) == (200, 7)
    assert (without_slash.status_code, without_slash.json()) == (200, 7)
    assert list(app.openapi()["paths"]) == ["/things/{thing_id}/"]


# --- refresh tokens, exports, uploads, deadlines, attempt events --------------------


def test_refresh_tokens_are_random_and_stored_as_sha256() -> None:
    token, other = new_refresh_token(), new_refresh_token()

    assert token != other
    assert len(token) >= 43
    assert refresh_token_hash(token) == hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20", "'+44 20"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        (None, ""),
        (12.5, "12.5"),
        (3, "3"),
        (T0, "2024-11-01T10:00:00+00:00"),
    ],
)
def test_export_cells_cannot_be_formulas(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_export_header_and_rows() -> None:
    row = {column: None for column in ATTEMPT_COLUMNS} | {"scores": [1.0, None]}

    assert header(2)[-3:] == ["late_saves", "q1_score", "q2_score"]
    assert len(row_cells(row)) == len(header(2))
    assert csv_text([["a", "b,c"], ["=x", ""]]) == 'a,"b,c"\r\n=x,\r\n'


def test_upload_ids_are_deterministic_and_the_same_in_both_formats() -> None:
    contest_id = uuid.uuid4()
    csv_upload = parse_csv_upload(
        b"type,question,option_1,option_2,correct,max_marks\nmcq,Q?,a,b,2,1\n", contest_id
    )
    json_upload = parse_json_upload(
        b'[{"type": "mcq_single", "content": {"question": "Q?", "options": ["a", "b"],'
        b' "correct_answer": 1}, "scoring": {"max_marks": 1}}]',
        contest_id,
    )
    with_external = parse_json_upload(
        b'[{"external_id": "q-1", "type": "subjective", "content": {"question": "Q?"},'
        b' "scoring": {"max_marks": 1}}]',
        contest_id,
    )

    assert csv_upload.problems == json_upload.problems == []
    assert csv_upload.good[0].question_id == json_upload.good[0].question_id
    assert (
        csv_upload.good[0].question_id
        == parse_csv_upload(
            b"type,question,option_1,option_2,correct,max_marks\nmcq,Q?,a,b,1,9\n", contest_id
        )
        .good[0]
        .question_id
    )  # the key and marks are not part of the identity
    assert with_external.good[0].question_id == uuid.uuid5(
        UPLOAD_NAMESPACE, f"{contest_id}/external_id/q-1"
    )
    assert (
        parse_csv_upload(
            b"type,question,option_1,option_2,correct,max_marks\nmcq,Q?,a,b,2,1\n", uuid.uuid4()
        )
        .good[0]
        .question_id
        != csv_upload.good[0].question_id
    )


@pytest.mark.parametrize(
    ("loc", "column"),
    [
        (("content", "options", 0), "option_1"),
        (("content", "options"), "option_1"),
        (("content", "correct_answers"), "correct"),
        (("content", "correct_answer"), "correct"),
        (("content", "question"), "question"),
        (("content", "rubric"), "rubric"),
        (("content", "coding", "hidden_tests", 0, "weight"), "coding.hidden_tests.0.weight"),
        (("scoring", "max_marks"), "max_marks"),
        (("scoring", "partial_credit"), "partial_credit"),
        (("type",), "type"),
        (("position",), "position"),
    ],
)
def test_csv_problems_name_their_column(loc: tuple[str | int, ...], column: str) -> None:
    assert csv_field(loc) == column


def test_csv_cells_become_a_question_item() -> None:
    item, problems = csv_item(
        2,
        {
            "type": " mcq_multi ",
            "question": "Which?",
            "option_1": " a ",
            "option_2": "b",
            "option_3": "",
            "correct": "1; 2",
            "max_marks": "4",
            "partial_credit": "yes",
            "coding": "",
        },
    )

    assert problems == []
    assert item == {
        "type": "mcq_multi",
        "content": {"question": "Which?", "options": ["a", "b"], "correct_answers": [0, 1]},
        "scoring": {"max_marks": "4", "partial_credit": "yes"},
    }


@pytest.mark.parametrize(
    ("cells", "field"),
    [
        ({"correct": "first"}, "correct"),
        ({"correct": "0"}, "correct"),
        ({"option_1": "a", "option_2": "", "option_3": "c"}, "option_2"),
        ({"coding": "{not json"}, "coding"),
    ],
)
def test_unreadable_csv_cells(cells: dict[str, str], field: str) -> None:
    _, problems = csv_item(5, {"type": "mcq", "question": "Q", "max_marks": "1", **cells})

    assert [(p.row, p.field) for p in problems] == [(5, field)]


def test_non_utf8_bytes_are_found_at_their_row() -> None:
    data = b'h\n"a\nb"\nok\n\xff\n'

    with pytest.raises(UploadFileError) as raised:
        decode_utf8(data, count_csv_rows=True)

    [problem] = raised.value.problems
    assert problem.row == 4
    assert "byte 0xff on line 5" in problem.reason
    assert decode_utf8(b"\xef\xbb\xbfx", count_csv_rows=False) == "x"


def test_multipart_file_part() -> None:
    content = b'type,question\r\nmcq,"a\r\nb"\r\n\xe9\r\n'
    request = httpx.Request(
        "POST", "http://x/", files={"file": ("q.csv", content)}, data={"other": "v"}
    )

    assert multipart_file(request.headers["content-type"], request.read()) == content
    with pytest.raises(UploadFileError):
        multipart_file("multipart/form-data; boundary=x", b"garbage")


def test_coding_rules_span_fields() -> None:
    spec = CodingSpec.model_validate(
        {
            "languages": ["python3", "python3"],
            "hidden_tests": [
                {"input": "", "output": "", "subtask": "a"},
                {"input": "", "output": ""},
                {"input": "", "output": "", "subtask": "zzz"},
            ],
            "subtasks": [{"name": "a"}, {"name": "b"}, {"name": "a"}],
        }
    )

    locs = [problem.loc for problem in coding_problems(spec)]

    assert locs == [
        ("content", "coding", "languages"),
        ("content", "coding", "subtasks"),
        ("content", "coding", "hidden_tests", 1, "subtask"),
        ("content", "coding", "hidden_tests", 2, "subtask"),
        ("content", "coding", "subtasks"),
    ]


def _live_row(**fields: Any) -> dict[str, Any]:
    return {
        "status": "active",
        "stored_deadline": None,
        "started_at": T0,
        "duration_seconds": 3600,
        "extension_seconds": 0,
        "contest_end": T0 + timedelta(hours=2),
        **fields,
    }


def test_running_attempt_deadlines() -> None:
    assert current_deadline(_live_row()) == T0 + timedelta(hours=1)
    assert current_deadline(_live_row(extension_seconds=600)) == T0 + timedelta(minutes=70)
    # Never past the contest's end.
    assert current_deadline(_live_row(extension_seconds=10**6)) == T0 + timedelta(hours=2)
    stored = T0 + timedelta(minutes=5)
    assert current_deadline(_live_row(status="submitted", stored_deadline=stored)) == stored
    assert current_deadline(_live_row(duration_seconds=None, contest_end=None)) is None
    assert seconds_left(T0 + timedelta(seconds=90), T0) == 90
    assert seconds_left(T0, T0 + timedelta(seconds=5)) == 0


@pytest.mark.parametrize(
    ("record", "value"),
    [
        (
            Record.TIME_EXTENDED,
            time_extended(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), 60, "a", T0),
        ),
        (
            Record.ATTEMPT_INVALIDATED,
            attempt_invalidated(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "why", "a", T0),
        ),
        (
            Record.MANUAL_GRADE_GIVEN,
            manual_grade_given(
                uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), 2.5, "ok", "g", T0
            ),
        ),
        (
            Record.REGRADE_REQUESTED,
            regrade_requested(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "", "a", T0),
        ),
    ],
)
def test_attempt_events_fit_their_avro_schemas(record: Record, value: dict[str, object]) -> None:
    decoded = decode(encode(record, value))

    assert decoded.name == record
    assert decoded.value == value | {"server_ts": T0}


def test_response_ids_are_uuid5_of_attempt_and_question() -> None:
    attempt_id, question_id = uuid.uuid4(), uuid.uuid4()

    response_id = response_id_for(attempt_id, question_id)

    assert response_id == uuid.uuid5(RESPONSE_NAMESPACE, f"{attempt_id}/{question_id}")
    assert response_id.version == 5
    assert question_regrade_event_id(attempt_id, question_id, 2) == question_regrade_event_id(
        attempt_id, question_id, 2
    )
    assert question_regrade_event_id(attempt_id, question_id, 3) != question_regrade_event_id(
        attempt_id, question_id, 2
    )
