"""The API's pure parts, without services: rules, definition records, tokens, routing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.definition_rules import (
    answer_key_problems,
    contest_window_problems,
    requested_answer_key,
    requested_duration,
)
from api.publishing import contest_definition, definition_messages, question_definition
from api.routing import SlashTolerantRouter
from api.security import (
    InvalidTokenError,
    decode_access_token,
    hash_password,
    issue_access_token,
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

    assert decoded_question.value == question_definition(question)
    assert decoded_contest.value["published_at"] == CONTEST["published_at"]
    assert decoded_contest.value["question_ids"] == [str(question["id"])]


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
