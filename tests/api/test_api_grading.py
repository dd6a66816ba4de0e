"""Manual grading: the pending queue, grades as ManualGradeGiven records, attempt regrades."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka.errors import KafkaConnectionError

from api.routes.grading import response_id_for
from avro_schemas.records import Record
from tests.api.conftest import T0, SinkRows, mcq_body

pytestmark = pytest.mark.integration

GRADING = "/api/v1/admin/grading"
NewPublishedContest = Callable[..., Awaitable[dict[str, Any]]]
Tail = Callable[[], Any]

SUBJECTIVE = {
    "type": "subjective",
    "content": {"question": "Explain the GIL.", "rubric": "2 marks per correct point"},
    "scoring": {"max_marks": 8},
}


async def _graded_contest(
    new_published_contest: NewPublishedContest, sink_rows: SinkRows
) -> dict[str, Any]:
    """A contest with a subjective and an MCQ question; two finished attempts whose
    subjective answers wait for a grader (the later-finished one first in the table)."""
    contest = await new_published_contest([SUBJECTIVE, mcq_body("unused")])
    subjective, mcq = (q["id"] for q in contest["questions"])
    late = await sink_rows.attempt(
        contest["id"], status="submitted", finished_at=T0 + timedelta(minutes=30)
    )
    early = await sink_rows.attempt(
        contest["id"], status="expired", finished_at=T0 + timedelta(minutes=10)
    )
    for attempt_id, text in ((late, "It is a lock."), (early, "Global interpreter lock.")):
        await sink_rows.response(attempt_id, subjective, contest["id"], text=text, max_score=8)
        await sink_rows.response(
            attempt_id, mcq, contest["id"], verdict="correct", score=10, selected=[2]
        )
    await sink_rows.save(late, subjective, contest["id"], language="en")
    contest.update(late=late, early=early, subjective=subjective, mcq=mcq)
    return contest


async def test_pending_responses_oldest_finish_first(
    client: httpx.AsyncClient,
    grader_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
) -> None:
    contest = await _graded_contest(new_published_contest, sink_rows)

    response = await client.get(
        f"{GRADING}/pending/", params={"contest_id": contest["id"]}, headers=grader_headers
    )

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    early, late = page["items"]
    assert (early["attempt_id"], late["attempt_id"]) == (contest["early"], contest["late"])
    assert late == {
        "response_id": str(
            response_id_for(uuid.UUID(contest["late"]), uuid.UUID(contest["subjective"]))
        ),
        "attempt_id": contest["late"],
        "contest_id": contest["id"],
        "question_id": contest["subjective"],
        "question_kind": "subjective",
        "prompt": "Explain the GIL.",
        "rubric": "2 marks per correct point",
        "answer_text": "It is a lock.",
        "language": "en",
        "max_marks": 8.0,
        "saved_at": "2024-11-01T10:00:00Z",
        "finished_at": "2024-11-01T10:30:00Z",
    }
    assert "participant_email" not in late  # graders grade blind
    paged = await client.get(
        f"{GRADING}/pending",
        params={"contest_id": contest["id"], "limit": 1, "offset": 1},
        headers=grader_headers,
    )
    assert [item["attempt_id"] for item in paged.json()["items"]] == [contest["late"]]


async def test_a_grade_is_sent_kept_and_leaves_the_queue(
    client: httpx.AsyncClient,
    grader_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    attempt_events_tail: Tail,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await _graded_contest(new_published_contest, sink_rows)
    response_id = response_id_for(uuid.UUID(contest["early"]), uuid.UUID(contest["subjective"]))

    async with attempt_events_tail() as events:
        graded = await client.post(
            f"{GRADING}/responses/{response_id}/",
            json={"score": 6.5, "comment": "misses the I/O release"},
            headers=grader_headers,
        )
        [(key, record)] = await events.read(1)
    pending = await client.get(
        f"{GRADING}/pending/", params={"contest_id": contest["id"]}, headers=grader_headers
    )

    assert graded.status_code == 202, graded.text
    body = graded.json()
    assert body["response_id"] == str(response_id)
    assert (body["score"], body["max_score"], body["grader"]) == (6.5, 8.0, "test-grader")
    assert key == contest["early"]
    assert record.name == Record.MANUAL_GRADE_GIVEN
    value = record.value
    assert value["event_id"] == body["event_id"]
    assert (value["attempt_id"], value["contest_id"], value["question_id"]) == (
        contest["early"],
        contest["id"],
        contest["subjective"],
    )
    assert (value["score"], value["comment"], value["grader"]) == (
        6.5,
        "misses the I/O release",
        "test-grader",
    )
    assert value["client_ts"] is None
    assert value["server_ts"].isoformat().replace("+00:00", "Z") == body["graded_at"]
    cursor = await db.execute(
        "SELECT score, comment, grader, response_id FROM manual_grades WHERE id = %s",
        (body["event_id"],),
    )
    assert await cursor.fetchone() == (6.5, "misses the I/O release", "test-grader", response_id)
    assert [item["attempt_id"] for item in pending.json()["items"]] == [contest["late"]]


@pytest.mark.parametrize(
    ("score", "message"),
    [(8.5, "between 0 and 8"), (-1, "greater than or equal to 0")],
)
async def test_a_score_outside_the_marks_is_422(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    score: float,
    message: str,
) -> None:
    contest = await _graded_contest(new_published_contest, sink_rows)
    response_id = response_id_for(uuid.UUID(contest["late"]), uuid.UUID(contest["subjective"]))

    response = await client.post(
        f"{GRADING}/responses/{response_id}/", json={"score": score}, headers=admin_headers
    )

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "score"]
    assert message in error["msg"]


async def test_grading_a_running_attempt_is_409(
    client: httpx.AsyncClient,
    grader_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
) -> None:
    contest = await new_published_contest([SUBJECTIVE])
    question_id = contest["questions"][0]["id"]
    attempt_id = await sink_rows.attempt(contest["id"])
    await sink_rows.response(attempt_id, question_id, contest["id"], text="early bird")

    response = await client.post(
        f"{GRADING}/responses/{response_id_for(uuid.UUID(attempt_id), uuid.UUID(question_id))}",
        json={"score": 1},
        headers=grader_headers,
    )

    assert response.status_code == 409
    assert "not finished" in response.json()["detail"]


async def test_grading_an_unknown_response_is_404(
    client: httpx.AsyncClient, grader_headers: dict[str, str]
) -> None:
    missing = uuid.uuid4()

    response = await client.post(
        f"{GRADING}/responses/{missing}/", json={"score": 1}, headers=grader_headers
    )

    assert response.status_code == 404
    assert response.json() == {"detail": f"response {missing} not found"}


async def test_a_grade_kafka_did_not_take_is_not_kept(
    client: httpx.AsyncClient,
    grader_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    db: psycopg.AsyncConnection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contest = await _graded_contest(new_published_contest, sink_rows)
    response_id = response_id_for(uuid.UUID(contest["late"]), uuid.UUID(contest["subjective"]))

    async def broker_down(*args: object, **kwargs: object) -> None:
        raise KafkaConnectionError("broker unreachable")

    monkeypatch.setattr("api.attempt_events.send_record", broker_down)
    response = await client.post(
        f"{GRADING}/responses/{response_id}/", json={"score": 2}, headers=grader_headers
    )

    assert response.status_code == 503
    cursor = await db.execute(
        "SELECT count(*) FROM manual_grades WHERE response_id = %s", (response_id,)
    )
    assert await cursor.fetchone() == (0,)


async def test_regrade_an_attempt(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
    attempt_events_tail: Tail,
) -> None:
    contest = await _graded_contest(new_published_contest, sink_rows)

    async with attempt_events_tail() as events:
        with_reason = await client.post(
            f"{GRADING}/regrade/{contest['late']}/",
            json={"reason": "grader mix-up"},
            headers=admin_headers,
        )
        without_body = await client.post(
            f"{GRADING}/regrade/{contest['late']}", headers=admin_headers
        )
        sent = await events.read(2)

    assert (with_reason.status_code, without_body.status_code) == (202, 202)
    assert [key for key, _ in sent] == [contest["late"], contest["late"]]
    assert [record.name for _, record in sent] == [Record.REGRADE_REQUESTED] * 2
    assert [record.value["reason"] for _, record in sent] == ["grader mix-up", ""]
    assert sent[0][1].value["admin"] == "test-admin"
    assert sent[0][1].value["contest_id"] == contest["id"]
    assert sent[0][1].value["event_id"] == with_reason.json()["event_id"]


async def test_regrade_refusals(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    grader_headers: dict[str, str],
    new_published_contest: NewPublishedContest,
    sink_rows: SinkRows,
) -> None:
    contest = await new_published_contest()
    running = await sink_rows.attempt(contest["id"])
    finished = await sink_rows.attempt(contest["id"], status="submitted")

    unknown = await client.post(f"{GRADING}/regrade/{uuid.uuid4()}/", headers=admin_headers)
    active = await client.post(f"{GRADING}/regrade/{running}/", headers=admin_headers)
    by_grader = await client.post(f"{GRADING}/regrade/{finished}/", headers=grader_headers)

    assert unknown.status_code == 404
    assert active.status_code == 409
    assert by_grader.status_code == 403
