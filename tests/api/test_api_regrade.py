"""Correcting published questions, and regrading attempts, as records on Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from api.attempt_events import question_regrade_event_id
from avro_schemas.records import Record
from tests.api.conftest import SinkRows, mcq_body
from tests.api.test_api_question_kinds import coding_body

pytestmark = pytest.mark.integration

QUESTIONS = "/api/v1/admin/questions/"
NewPublishedContest = Callable[..., Awaitable[dict[str, Any]]]
Tail = Callable[[], Any]


async def _contest_with_attempts(
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    questions: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """A published contest with two finished attempts and a running one."""
    contest = await new_published_contest(questions)
    finished = [
        await sink_rows.attempt(contest["id"], status="submitted"),
        await sink_rows.attempt(contest["id"], status="expired"),
    ]
    await sink_rows.attempt(contest["id"])
    return contest, sorted(finished)


async def test_correcting_a_key_bumps_the_revision_and_regrades_finished_attempts(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    definitions_tail: Tail,
    attempt_events_tail: Tail,
) -> None:
    contest, finished = await _contest_with_attempts(new_published_contest, sink_rows)
    question = contest["questions"][0]
    url = f"{QUESTIONS}{question['id']}/regrade/"

    async with definitions_tail() as definitions, attempt_events_tail() as events:
        response = await client.post(
            url, json={"correct_answer": 1, "reason": "key typo"}, headers=admin_headers
        )
        [(definition_key, definition)] = await definitions.read(1)
        sent = await events.read(2)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["revision_changed"] is True
    assert body["regrades_requested"] == 2
    assert body["question"]["revision"] == 2
    assert body["question"]["content"]["correct_answers"] == [1]
    assert definition_key == question["id"]
    assert definition.name == Record.QUESTION_DEFINITION
    assert definition.value["revision"] == 2
    assert definition.value["correct_options"] == [1]
    assert sorted(key for key, _ in sent) == finished
    for key, record in sent:
        assert record.name == Record.REGRADE_REQUESTED
        assert record.value["attempt_id"] == key
        assert record.value["contest_id"] == contest["id"]
        assert record.value["admin"] == "test-admin"
        assert record.value["reason"] == "key typo"
        assert record.value["event_id"] == str(
            question_regrade_event_id(uuid.UUID(key), uuid.UUID(question["id"]), 2)
        )


async def test_the_same_correction_twice_changes_nothing(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    definitions_tail: Tail,
    attempt_events_tail: Tail,
) -> None:
    contest, _ = await _contest_with_attempts(new_published_contest, sink_rows)
    url = f"{QUESTIONS}{contest['questions'][0]['id']}/regrade/"
    first = await client.post(url, json={"correct_answers": [3]}, headers=admin_headers)

    async with definitions_tail() as definitions, attempt_events_tail() as events:
        second = await client.post(url, json={"correct_answers": [3]}, headers=admin_headers)
        [(_, definition)] = await definitions.read(1)
        resent = await events.read(2)

    assert first.json()["question"]["revision"] == 2
    assert second.status_code == 202
    assert second.json()["revision_changed"] is False
    assert second.json()["question"]["revision"] == 2
    assert second.json()["question"]["updated_at"] == first.json()["question"]["updated_at"]
    # The same definition and the same regrade ids: nothing new downstream.
    assert definition.value["revision"] == 2
    assert {record.value["event_id"] for _, record in resent} == {
        str(question_regrade_event_id(uuid.UUID(key), uuid.UUID(contest["questions"][0]["id"]), 2))
        for key, _ in resent
    }


async def test_correcting_coding_tests(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    definitions_tail: Tail,
) -> None:
    contest, _ = await _contest_with_attempts(
        new_published_contest, sink_rows, [coding_body("unused")]
    )
    url = f"{QUESTIONS}{contest['questions'][0]['id']}/regrade/"
    tests = {
        "hidden_tests": [{"input": "2 2\n", "output": "4\n", "weight": 2}],
        "subtasks": [],
        "comparison": {"mode": "tokens"},
    }

    async with definitions_tail() as definitions:
        corrected = await client.post(url, json={"coding": tests}, headers=admin_headers)
        [(_, definition)] = await definitions.read(1)
    again = await client.post(url, json={"coding": tests}, headers=admin_headers)

    assert corrected.status_code == 202, corrected.text
    coding = corrected.json()["question"]["content"]["coding"]
    assert coding["hidden_tests"] == [
        {"input": "2 2\n", "output": "4\n", "weight": 2.0, "subtask": None}
    ]
    assert coding["comparison"] == {"mode": "tokens"}
    assert coding["languages"] == ["python3", "cpp17"]  # left out: kept
    assert corrected.json()["question"]["revision"] == 2
    # The v1 definition of a coding question: its v1 fields, the new revision.
    assert definition.value["kind"] == "coding"
    assert definition.value["revision"] == 2
    assert again.json()["revision_changed"] is False


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ("body", "correct_answers")),
        ({"correct_answer": 9}, ("body", "correct_answer")),
        ({"correct_answers": [0, 1]}, ("body", "correct_answers")),
        ({"correct_answer": 0, "correct_answers": [0]}, ("body", "correct_answers")),
        ({"coding": {"hidden_tests": []}}, ("body", "coding")),
        ({"options": ["a", "b"]}, ("body", "options")),
    ],
)
async def test_bad_corrections_are_422(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    body: dict[str, Any],
    loc: tuple[str, ...],
) -> None:
    contest = await new_published_contest()

    response = await client.post(
        f"{QUESTIONS}{contest['questions'][0]['id']}/regrade/", json=body, headers=admin_headers
    )

    assert response.status_code == 422, response.text
    assert loc in [tuple(error["loc"]) for error in response.json()["detail"]]


async def test_coding_tests_refused_for_a_coding_question_without_tests_left(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
) -> None:
    contest = await new_published_contest([coding_body("unused")])

    response = await client.post(
        f"{QUESTIONS}{contest['questions'][0]['id']}/regrade/",
        json={"coding": {"hidden_tests": []}},
        headers=admin_headers,
    )

    assert response.status_code == 422
    locs = [tuple(error["loc"]) for error in response.json()["detail"]]
    assert ("body", "coding", "hidden_tests") in locs


async def test_draft_questions_are_corrected_with_patch(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: Callable[..., Awaitable[dict[str, Any]]],
) -> None:
    contest = await new_contest(questions=1)
    detail = await client.get(f"/api/v1/admin/contests/{contest['id']}/", headers=admin_headers)

    response = await client.post(
        f"{QUESTIONS}{detail.json()['questions'][0]['id']}/regrade/",
        json={"correct_answer": 1},
        headers=admin_headers,
    )

    assert response.status_code == 409
    assert "PATCH" in response.json()["detail"]


async def test_regrade_of_unknown_question_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        f"{QUESTIONS}{uuid.uuid4()}/regrade/", json={"correct_answer": 1}, headers=admin_headers
    )

    assert response.status_code == 404


async def test_a_failed_send_is_retried_by_sending_again(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contest, _ = await _contest_with_attempts(new_published_contest, sink_rows)
    url = f"{QUESTIONS}{contest['questions'][0]['id']}/regrade/"

    async def broker_down(*args: object, **kwargs: object) -> None:
        raise KafkaConnectionError("broker unreachable")

    with monkeypatch.context() as patched:
        patched.setattr("api.routes.questions.send_record", broker_down)
        failed = await client.post(url, json={"correct_answer": 0}, headers=admin_headers)
    retried = await client.post(url, json={"correct_answer": 0}, headers=admin_headers)

    assert failed.status_code == 503
    assert "revision 2" in failed.json()["detail"]
    assert retried.status_code == 202
    assert retried.json()["question"]["revision"] == 2
    assert retried.json()["regrades_requested"] == 2


async def test_graders_may_not_correct_questions(
    client: httpx.AsyncClient,
    grader_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
) -> None:
    contest = await new_published_contest([mcq_body("unused")])

    response = await client.post(
        f"{QUESTIONS}{contest['questions'][0]['id']}/regrade/",
        json={"correct_answer": 1},
        headers=grader_headers,
    )

    assert response.status_code == 403
