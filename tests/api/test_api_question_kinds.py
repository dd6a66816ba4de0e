"""Subjective questions with rubrics and coding questions with their judging details."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

QUESTIONS = "/api/v1/admin/questions/"
NewContest = Callable[..., Awaitable[dict[str, Any]]]

CODING = {
    "statement": "Read two integers and print their sum.",
    "languages": ["python3", "cpp17"],
    "time_limit_ms": 1000,
    "memory_limit_mb": 128,
    "sample_tests": [{"input": "1 2\n", "output": "3\n", "explanation": "1 + 2"}],
    "hidden_tests": [
        {"input": "5 7\n", "output": "12\n", "weight": 1, "subtask": "small"},
        {
            "input": "1000000000 1000000000\n",
            "output": "2000000000\n",
            "weight": 3,
            "subtask": "large",
        },
    ],
    "subtasks": [{"name": "small"}, {"name": "large", "description": "overflow"}],
    "comparison": {"mode": "float", "abs_tol": 0.001, "rel_tol": 0},
}


def coding_body(contest_id: str, **coding: Any) -> dict[str, Any]:
    """A coding question; `coding` overrides fields of its details."""
    return {
        "contest_id": contest_id,
        "type": "coding",
        "content": {
            "question": "Sum of two numbers",
            "coding": {**copy.deepcopy(CODING), **coding},
        },
        "scoring": {"max_marks": 40},
    }


def _errors(response: httpx.Response) -> dict[tuple[str | int, ...], str]:
    assert response.status_code == 422, response.text
    return {tuple(error["loc"]): error["msg"] for error in response.json()["detail"]}


async def test_subjective_question_keeps_its_rubric(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    body = {
        "contest_id": contest["id"],
        "type": "subjective",
        "content": {"question": "Explain the GIL.", "rubric": "5: names the lock; 5: effects"},
        "scoring": {"max_marks": 10},
    }

    created = await client.post(QUESTIONS, json=body, headers=admin_headers)
    fetched = await client.get(f"{QUESTIONS}{created.json()['id']}/", headers=admin_headers)

    assert created.status_code == 201, created.text
    assert fetched.json()["content"]["rubric"] == "5: names the lock; 5: effects"
    assert fetched.json()["content"]["coding"] is None
    assert fetched.json()["scoring"]["max_marks"] == 10.0


async def test_coding_question_stores_its_details(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()

    created = await client.post(QUESTIONS, json=coding_body(contest["id"]), headers=admin_headers)

    assert created.status_code == 201, created.text
    coding = created.json()["content"]["coding"]
    assert coding["languages"] == ["python3", "cpp17"]
    assert coding["hidden_tests"][1] == {
        "input": "1000000000 1000000000\n",
        "output": "2000000000\n",
        "weight": 3.0,
        "subtask": "large",
    }
    assert coding["comparison"] == {"mode": "float", "abs_tol": 0.001, "rel_tol": 0.0}
    assert coding["subtasks"][1] == {"name": "large", "description": "overflow"}
    fetched = await client.get(f"{QUESTIONS}{created.json()['id']}/", headers=admin_headers)
    assert fetched.json()["content"]["coding"] == coding


async def test_coding_defaults(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    body = coding_body(contest["id"])
    body["content"]["coding"] = {
        "languages": ["java17"],
        "hidden_tests": [{"input": "", "output": "ok"}],
    }

    created = await client.post(QUESTIONS, json=body, headers=admin_headers)

    assert created.status_code == 201, created.text
    coding = created.json()["content"]["coding"]
    assert coding["comparison"] == {"mode": "trim"}
    assert (coding["time_limit_ms"], coding["memory_limit_mb"]) == (2000, 256)
    assert coding["hidden_tests"][0]["weight"] == 1.0
    assert coding["statement"] is None


@pytest.mark.parametrize(
    ("coding", "loc", "message"),
    [
        ({"hidden_tests": []}, ("hidden_tests",), "needs a hidden test"),
        (
            {"hidden_tests": [{"input": "", "output": "", "weight": 0, "subtask": "small"}]},
            ("hidden_tests", 0, "weight"),
            "greater than 0",
        ),
        (
            {"hidden_tests": [{"input": "", "output": "", "weight": -1, "subtask": "small"}]},
            ("hidden_tests", 0, "weight"),
            "greater than 0",
        ),
        ({"languages": ["python3", "rust"]}, ("languages", 1), "python3"),
        ({"languages": []}, ("languages",), "at least 1"),
        ({"languages": ["cpp17", "cpp17"]}, ("languages",), "repeated"),
        (
            {"hidden_tests": [{"input": "", "output": "", "subtask": "medium"}]},
            ("hidden_tests", 0, "subtask"),
            "not in subtasks",
        ),
        (
            {"hidden_tests": [{"input": "", "output": ""}]},
            ("hidden_tests", 0, "subtask"),
            "every hidden test needs one",
        ),
        (
            {"subtasks": [{"name": "small"}, {"name": "large"}, {"name": "huge"}]},
            ("subtasks",),
            "without hidden tests: ['huge']",
        ),
        (
            {"subtasks": [{"name": "small"}, {"name": "small"}, {"name": "large"}]},
            ("subtasks",),
            "repeated",
        ),
        ({"comparison": {"mode": "regex"}}, ("comparison",), "does not match any of the"),
        (
            {"comparison": {"mode": "float", "abs_tol": -1}},
            ("comparison", "float", "abs_tol"),
            "greater than or equal to 0",
        ),
        ({"time_limit_ms": 10}, ("time_limit_ms",), "greater than or equal to 100"),
        ({"surprise": True}, ("surprise",), "Extra inputs"),
    ],
)
async def test_coding_details_are_checked(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    coding: dict[str, Any],
    loc: tuple[str | int, ...],
    message: str,
) -> None:
    contest = await new_contest()

    response = await client.post(
        QUESTIONS, json=coding_body(contest["id"], **coding), headers=admin_headers
    )

    errors = _errors(response)
    where = ("body", "content", "coding", *loc)
    assert where in errors, errors
    assert message in errors[where]


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        (
            {"type": "coding", "content": {"question": "Q"}},
            ("body", "content", "coding"),
            "needs content.coding",
        ),
        (
            {
                "type": "mcq_single",
                "content": {
                    "question": "Q",
                    "options": ["a", "b"],
                    "correct_answer": 0,
                    "coding": CODING,
                },
            },
            ("body", "content", "coding"),
            "only for coding questions",
        ),
        (
            {
                "type": "mcq_single",
                "content": {
                    "question": "Q",
                    "options": ["a", "b"],
                    "correct_answer": 0,
                    "rubric": "be kind",
                },
            },
            ("body", "content", "rubric"),
            "only for subjective and coding",
        ),
    ],
)
async def test_kind_specific_parts_belong_to_their_kind(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    body: dict[str, Any],
    loc: tuple[str, ...],
    message: str,
) -> None:
    contest = await new_contest()

    response = await client.post(
        QUESTIONS,
        json={**body, "contest_id": contest["id"], "scoring": {"max_marks": 5}},
        headers=admin_headers,
    )

    errors = _errors(response)
    assert loc in errors, errors
    assert message in errors[loc]


async def test_patch_replaces_coding_details_and_a_type_change_drops_them(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    created = await client.post(QUESTIONS, json=coding_body(contest["id"]), headers=admin_headers)
    url = f"{QUESTIONS}{created.json()['id']}/"
    replaced = {"languages": ["python3"], "hidden_tests": [{"input": "1", "output": "1"}]}

    patched = await client.patch(
        url,
        json={"content": {"coding": replaced, "rubric": "read the code"}},
        headers=admin_headers,
    )
    kept = await client.patch(url, json={"scoring": {"max_marks": 50}}, headers=admin_headers)
    subjective = await client.patch(url, json={"type": "subjective"}, headers=admin_headers)

    assert patched.status_code == 200, patched.text
    assert patched.json()["content"]["coding"]["languages"] == ["python3"]
    assert patched.json()["content"]["rubric"] == "read the code"
    assert kept.json()["content"]["coding"] == patched.json()["content"]["coding"]
    assert subjective.status_code == 200, subjective.text
    assert subjective.json()["content"]["coding"] is None
    assert subjective.json()["content"]["rubric"] == "read the code"


async def test_patch_to_coding_needs_details(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    question_body: Callable[..., dict[str, Any]],
) -> None:
    contest = await new_contest()
    created = await client.post(QUESTIONS, json=question_body(contest["id"]), headers=admin_headers)

    response = await client.patch(
        f"{QUESTIONS}{created.json()['id']}/",
        json={"type": "coding", "content": {"options": [], "correct_answers": []}},
        headers=admin_headers,
    )

    assert ("body", "content", "coding") in _errors(response)


async def test_a_published_coding_question_carries_its_tests_to_the_stream(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    definitions_tail: Callable[[], Any],
) -> None:
    contest = await new_contest()
    made = await client.post(QUESTIONS, json=coding_body(contest["id"]), headers=admin_headers)
    assert made.status_code == 201, made.text
    async with definitions_tail() as tail:
        published = await client.post(
            f"/api/v1/admin/contests/{contest['id']}/publish/", headers=admin_headers
        )
        assert published.status_code == 200, published.text
        (_, question), _ = await tail.read(2)
    definition = question.value
    assert definition["kind"] == "coding"
    assert definition["languages"] == ["python3", "cpp17"]
    assert (definition["time_limit_ms"], definition["memory_limit_mb"]) == (1000, 128)
    assert (definition["compare_mode"], definition["abs_tolerance"]) == ("float", 0.001)
    assert [(t["input"], t["expected"]) for t in definition["sample_tests"]] == [(b"1 2\n", b"3\n")]
    assert [(t["weight"], t["subtask"]) for t in definition["hidden_tests"]] == [
        (1.0, "small"),
        (3.0, "large"),
    ]
