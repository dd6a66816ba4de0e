"""Questions: answer-key rules, ordering, editing and deleting drafts."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

QUESTIONS = "/api/v1/admin/questions/"
NewContest = Callable[..., Awaitable[dict[str, Any]]]
QuestionBody = Callable[..., dict[str, Any]]


def _errors(response: httpx.Response) -> dict[tuple[str | int, ...], str]:
    assert response.status_code == 422, response.text
    return {tuple(error["loc"]): error["msg"] for error in response.json()["detail"]}


async def test_original_mcq_example_is_a_single_answer_question(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
) -> None:
    contest = await new_contest()

    response = await client.post(
        QUESTIONS, json=question_body(contest["id"]), headers=admin_headers
    )

    assert response.status_code == 201, response.text
    question = response.json()
    assert question["type"] == "mcq_single"
    assert question["content"] == {
        "question": "What is 2+2?",
        "options": ["2", "3", "4", "5"],
        "correct_answers": [2],
        "rubric": None,
        "coding": None,
    }
    assert question["external_id"] is None
    assert question["scoring"] == {
        "max_marks": 10.0,
        "negative_marks": 0.0,
        "partial_credit": False,
    }
    assert question["position"] == 0


async def test_multi_select_with_partial_credit(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
) -> None:
    contest = await new_contest()
    body = question_body(
        contest["id"],
        type="mcq_multi",
        content={"question": "Primes?", "options": ["2", "4", "5"], "correct_answers": [2, 0]},
        scoring={"max_marks": 4, "negative_marks": 1, "partial_credit": True},
    )

    response = await client.post(QUESTIONS, json=body, headers=admin_headers)

    assert response.status_code == 201, response.text
    assert response.json()["content"]["correct_answers"] == [0, 2]
    assert response.json()["scoring"]["partial_credit"] is True


async def test_subjective_question_has_no_options(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
) -> None:
    contest = await new_contest()
    body = question_body(
        contest["id"],
        type="subjective",
        content={"question": "Explain the GIL."},
        scoring={"max_marks": 20},
    )

    response = await client.post(QUESTIONS, json=body, headers=admin_headers)

    assert response.status_code == 201, response.text
    assert response.json()["content"] == {
        "question": "Explain the GIL.",
        "options": [],
        "correct_answers": [],
        "rubric": None,
        "coding": None,
    }


@pytest.mark.parametrize(
    ("overrides", "loc", "message"),
    [
        (
            {"content": {"question": "Q", "options": ["only"], "correct_answer": 0}},
            ("body", "content", "options"),
            "needs at least 2 options, got 1",
        ),
        (
            {"content": {"question": "Q", "options": ["a", "b"], "correct_answer": 2}},
            ("body", "content", "correct_answer"),
            "correct answer index [2] outside the options (0..1 for 2 options)",
        ),
        (
            {"content": {"question": "Q", "options": ["a", "a"], "correct_answer": 0}},
            ("body", "content", "options"),
            "options must differ",
        ),
        (
            {"content": {"question": "Q", "options": ["a", "b"], "correct_answers": [0, 1]}},
            ("body", "content", "correct_answers"),
            "exactly one correct answer",
        ),
        (
            {"content": {"question": "Q", "options": ["a", "b"]}},
            ("body", "content", "correct_answers"),
            "exactly one correct answer",
        ),
        (
            {
                "type": "mcq_multi",
                "content": {"question": "Q", "options": ["a", "b"], "correct_answers": []},
            },
            ("body", "content", "correct_answers"),
            "at least one correct answer",
        ),
        (
            {
                "type": "mcq_multi",
                "content": {"question": "Q", "options": ["a", "b"], "correct_answers": [1, 1]},
            },
            ("body", "content", "correct_answers"),
            "repeat option [1]",
        ),
        (
            {
                "content": {
                    "question": "Q",
                    "options": ["a", "b"],
                    "correct_answer": 0,
                    "correct_answers": [0],
                }
            },
            ("body", "content", "correct_answers"),
            "not both",
        ),
        (
            {"content": {"question": "Q", "options": ["a", "b"], "correct_answer": -1}},
            ("body", "content", "correct_answer"),
            "greater than or equal to 0",
        ),
        (
            {"type": "subjective", "content": {"question": "Q", "options": ["a", "b"]}},
            ("body", "content", "options"),
            "only for MCQ questions",
        ),
        (
            {"scoring": {"max_marks": 10, "partial_credit": True}},
            ("body", "scoring", "partial_credit"),
            "only to mcq_multi",
        ),
        ({"scoring": {"max_marks": 0}}, ("body", "scoring", "max_marks"), "greater than 0"),
        ({"scoring": {"max_marks": -5}}, ("body", "scoring", "max_marks"), "greater than 0"),
        (
            {"scoring": {"max_marks": 1, "negative_marks": -1}},
            ("body", "scoring", "negative_marks"),
            "greater than or equal to 0",
        ),
        ({"scoring": {}}, ("body", "scoring", "max_marks"), "Field required"),
        ({"type": "essay"}, ("body", "type"), "Input should be"),
        ({"position": -1}, ("body", "position"), "greater than or equal to 0"),
        ({"contest_id": "nope"}, ("body", "contest_id"), "UUID"),
    ],
)
async def test_create_question_validation(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
    overrides: dict[str, Any],
    loc: tuple[str, ...],
    message: str,
) -> None:
    contest = await new_contest()

    response = await client.post(
        QUESTIONS, json=question_body(contest["id"], **overrides), headers=admin_headers
    )

    errors = _errors(response)
    assert loc in errors, errors
    assert message in errors[loc]


async def test_question_for_unknown_contest_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str], question_body: QuestionBody
) -> None:
    missing = str(uuid.uuid4())

    response = await client.post(QUESTIONS, json=question_body(missing), headers=admin_headers)

    assert response.status_code == 404
    assert response.json() == {"detail": f"contest {missing} not found"}


async def test_questions_are_appended_and_listed_in_position_order(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
) -> None:
    contest = await new_contest(questions=2)
    first = await client.post(
        QUESTIONS, json=question_body(contest["id"], position=0), headers=admin_headers
    )
    assert first.status_code == 201

    listed = await client.get(
        QUESTIONS.rstrip("/"), params={"contest_id": contest["id"]}, headers=admin_headers
    )

    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == 3
    assert [q["position"] for q in page["items"]] == [0, 0, 1]
    # Equal positions keep creation order.
    assert page["items"][1]["id"] == first.json()["id"]


async def test_list_questions_of_unknown_contest_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get(
        QUESTIONS, params={"contest_id": str(uuid.uuid4())}, headers=admin_headers
    )

    assert response.status_code == 404


async def test_patch_question_merges_fields(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
) -> None:
    contest = await new_contest()
    created = await client.post(QUESTIONS, json=question_body(contest["id"]), headers=admin_headers)
    question_id = created.json()["id"]

    response = await client.patch(
        f"{QUESTIONS}{question_id}",
        json={
            "type": "mcq_multi",
            "content": {"correct_answers": [2, 3]},
            "scoring": {"partial_credit": True},
        },
        headers=admin_headers,
    )

    assert response.status_code == 200, response.text
    question = response.json()
    assert question["type"] == "mcq_multi"
    assert question["content"]["question"] == "What is 2+2?"
    assert question["content"]["correct_answers"] == [2, 3]
    assert question["scoring"] == {"max_marks": 10.0, "negative_marks": 0.0, "partial_credit": True}


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"content": {"options": ["a", "b"]}}, ("body", "content", "correct_answers")),
        ({"type": "subjective"}, ("body", "content", "options")),
        ({"scoring": {"max_marks": 0}}, ("body", "scoring", "max_marks")),
        ({"content": {"question": None}}, ("body", "content", "question")),
        ({"contest_id": str(uuid.uuid4())}, ("body", "contest_id")),
    ],
)
async def test_patch_question_keeps_the_rules(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
    patch: dict[str, Any],
    loc: tuple[str, ...],
) -> None:
    contest = await new_contest()
    created = await client.post(QUESTIONS, json=question_body(contest["id"]), headers=admin_headers)

    response = await client.patch(
        f"{QUESTIONS}{created.json()['id']}/", json=patch, headers=admin_headers
    )

    assert loc in _errors(response)


async def test_delete_question(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
) -> None:
    contest = await new_contest()
    created = await client.post(QUESTIONS, json=question_body(contest["id"]), headers=admin_headers)
    question_id = created.json()["id"]

    deleted = await client.delete(f"{QUESTIONS}{question_id}/", headers=admin_headers)
    again = await client.delete(f"{QUESTIONS}{question_id}/", headers=admin_headers)
    fetched = await client.get(f"{QUESTIONS}{question_id}/", headers=admin_headers)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == 404
    assert fetched.status_code == 404
    assert fetched.json() == {"detail": f"question {question_id} not found"}


async def test_grader_may_not_see_or_change_questions(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    grader_headers: dict[str, str],
    new_contest: NewContest,
    question_body: QuestionBody,
) -> None:
    contest = await new_contest()
    created = await client.post(QUESTIONS, json=question_body(contest["id"]), headers=admin_headers)
    question_id = created.json()["id"]

    added = await client.post(QUESTIONS, json=question_body(contest["id"]), headers=grader_headers)
    deleted = await client.delete(f"{QUESTIONS}{question_id}/", headers=grader_headers)
    read = await client.get(f"{QUESTIONS}{question_id}/", headers=grader_headers)

    assert (added.status_code, deleted.status_code, read.status_code) == (403, 403, 403)
