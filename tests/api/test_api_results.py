"""Results read from the sink tables: leaderboard order, per-attempt results, responses."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from api.routes.grading import response_id_for
from streams.rules.ranking import Standing, rank

pytestmark = pytest.mark.integration

NewContest = Callable[..., Awaitable[dict[str, Any]]]
T0 = datetime(2024, 11, 1, 10, tzinfo=UTC)


def _standing(name: str, total: float, changed_min: int, started_min: int) -> Standing:
    return Standing(
        attempt_id=str(uuid.uuid4()),
        participant_name=name,
        total_score=total,
        score_changed_at=T0 + timedelta(minutes=changed_min),
        started_at=T0 + timedelta(minutes=started_min),
    )


async def _insert_standings(
    db: psycopg.AsyncConnection[Any],
    contest_id: str,
    standings: list[Standing],
    *,
    invalidated: bool = False,
) -> None:
    async with db.cursor() as cursor:
        await cursor.executemany(
            """
            INSERT INTO leaderboard (contest_id, attempt_id, participant_name, total_score,
                                     score_changed_at, started_at, invalidated, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, now())
            """,
            [
                (
                    contest_id,
                    s.attempt_id,
                    s.participant_name,
                    s.total_score,
                    s.score_changed_at,
                    s.started_at,
                    invalidated,
                )
                for s in standings
            ],
        )


async def test_leaderboard_ranks_like_the_streams(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await new_contest()
    standings = [
        _standing("top", 15, 30, 0),
        # Tied on all three keys: one rank, ordered by attempt id.
        _standing("tie-a", 10, 20, 1),
        _standing("tie-b", 10, 20, 1),
        _standing("tie-c", 10, 20, 1),
        # Same total, later last change: below the ties.
        _standing("later-change", 10, 25, 0),
        # Same total and change, later start.
        _standing("later-start", 10, 20, 2),
        _standing("low", 2.5, 5, 0),
        _standing("zero", 0, 1, 0),
    ]
    await _insert_standings(db, contest["id"], standings)
    # Invalidated attempts disappear without leaving a gap in the ranks.
    await _insert_standings(db, contest["id"], [_standing("cheat", 99, 1, 0)], invalidated=True)

    response = await client.get(
        f"/api/v1/admin/contests/{contest['id']}/leaderboard/", headers=admin_headers
    )

    assert response.status_code == 200, response.text
    page = response.json()
    expected = [(r, s.attempt_id, s.participant_name, s.total_score) for r, s in rank(standings)]
    got = [
        (row["rank"], row["attempt_id"], row["participant_name"], row["total_score"])
        for row in page["items"]
    ]
    assert got == expected
    assert [row["rank"] for row in page["items"]] == [1, 2, 2, 2, 5, 6, 7, 8]
    assert page["total"] == len(standings)
    first = page["items"][0]
    assert datetime.fromisoformat(first["score_changed_at"]) == T0 + timedelta(minutes=30)


async def test_leaderboard_pages_keep_ranks(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await new_contest()
    standings = [_standing(f"p{n}", score, 10, 0) for n, score in enumerate([9, 7, 7, 5, 3])]
    await _insert_standings(db, contest["id"], standings)

    response = await client.get(
        f"/api/v1/admin/contests/{contest['id']}/leaderboard",
        params={"limit": 2, "offset": 2},
        headers=admin_headers,
    )

    page = response.json()
    ranked = rank(standings)[2:4]
    assert [(row["rank"], row["attempt_id"]) for row in page["items"]] == [
        (r, s.attempt_id) for r, s in ranked
    ]
    assert [row["rank"] for row in page["items"]] == [2, 4]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 2)


async def test_leaderboard_of_unknown_contest_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get(
        f"/api/v1/admin/contests/{uuid.uuid4()}/leaderboard/", headers=admin_headers
    )

    assert response.status_code == 404


async def _insert_attempt(
    db: psycopg.AsyncConnection[Any], contest_id: str, name: str, started_min: int, **extra: Any
) -> str:
    attempt_id = str(uuid.uuid4())
    fields = {
        "id": attempt_id,
        "contest_id": contest_id,
        "participant_id": str(uuid.uuid4()),
        "participant_email": f"{name}@example.com",
        "participant_name": name,
        "started_at": T0 + timedelta(minutes=started_min),
        **extra,
    }
    columns = ", ".join(fields)
    placeholders = ", ".join(f"%({column})s" for column in fields)
    await db.execute(
        f"INSERT INTO attempts ({columns}) VALUES ({placeholders})",
        fields,
    )
    return attempt_id


async def test_contest_results_list_every_attempt(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await new_contest()
    finished = await _insert_attempt(
        db,
        contest["id"],
        "ada",
        0,
        status="submitted",
        finished_at=T0 + timedelta(minutes=50),
        total_score=12.5,
        max_score=20,
        late_saves=1,
        counted_saves=7,
    )
    active = await _insert_attempt(db, contest["id"], "bob", 5)

    response = await client.get(
        f"/api/v1/admin/contests/{contest['id']}/results/", headers=admin_headers
    )

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    assert [row["attempt_id"] for row in page["items"]] == [finished, active]
    ada = page["items"][0]
    assert ada == {
        "attempt_id": finished,
        "participant_email": "ada@example.com",
        "participant_name": "ada",
        "status": "submitted",
        "started_at": "2024-11-01T10:00:00Z",
        "finished_at": "2024-11-01T10:50:00Z",
        "total_score": 12.5,
        "max_score": 20.0,
        "late_saves": 1,
        "counted_saves": 7,
    }
    assert page["items"][1]["status"] == "active"
    assert page["items"][1]["total_score"] is None


async def test_attempt_detail_with_responses(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await new_contest(questions=2)
    detail = await client.get(f"/api/v1/admin/contests/{contest['id']}/", headers=admin_headers)
    first_q, second_q = (q["id"] for q in detail.json()["questions"])
    attempt_id = await _insert_attempt(db, contest["id"], "cy", 0, total_score=10, max_score=20)
    saved = T0 + timedelta(minutes=3)
    for question_id, verdict, score, selected in [
        (second_q, "wrong", 0.0, [1]),
        (first_q, "correct", 10.0, [2]),
    ]:
        await db.execute(
            """
            INSERT INTO responses (attempt_id, question_id, contest_id, verdict, score,
                                   max_score, selected_options, saved_at, grader_version,
                                   graded_at, grading_event_id)
            VALUES (%s, %s, %s, %s, %s, 10, %s, %s, 'mcq-1', now(), %s)
            """,
            (
                attempt_id,
                question_id,
                contest["id"],
                verdict,
                score,
                Jsonb(selected),
                saved,
                uuid.uuid4(),
            ),
        )

    response = await client.get(f"/api/v1/admin/attempts/{attempt_id}/", headers=admin_headers)

    assert response.status_code == 200, response.text
    attempt = response.json()
    assert attempt["attempt_id"] == attempt_id
    assert attempt["participant_email"] == "cy@example.com"
    assert attempt["total_score"] == 10.0
    # Responses come in question order, whatever order they were graded in.
    assert attempt["responses"] == [
        {
            "response_id": str(response_id_for(uuid.UUID(attempt_id), uuid.UUID(first_q))),
            "question_id": first_q,
            "verdict": "correct",
            "score": 10.0,
            "max_score": 10.0,
            "selected_options": [2],
            "text": None,
            "saved_at": "2024-11-01T10:03:00Z",
            "grader_version": "mcq-1",
        },
        {
            "response_id": str(response_id_for(uuid.UUID(attempt_id), uuid.UUID(second_q))),
            "question_id": second_q,
            "verdict": "wrong",
            "score": 0.0,
            "max_score": 10.0,
            "selected_options": [1],
            "text": None,
            "saved_at": "2024-11-01T10:03:00Z",
            "grader_version": "mcq-1",
        },
    ]


async def test_unknown_attempt_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    missing = uuid.uuid4()

    response = await client.get(f"/api/v1/admin/attempts/{missing}/", headers=admin_headers)

    assert response.status_code == 404
    assert response.json() == {"detail": f"attempt {missing} not found"}


async def test_export_csv_one_row_per_attempt_in_leaderboard_order(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await new_contest(questions=2)
    detail = await client.get(f"/api/v1/admin/contests/{contest['id']}/", headers=admin_headers)
    first_q, second_q = (q["id"] for q in detail.json()["questions"])
    finished = {"status": "submitted", "finished_at": T0 + timedelta(minutes=40), "max_score": 20}
    winner = await _insert_attempt(
        db, contest["id"], "=HYPERLINK(evil)", 1, total_score=15, counted_saves=3, late_saves=0,
        **finished,
    )  # fmt: skip
    runner_up = await _insert_attempt(db, contest["id"], "+plain", 0, total_score=5, **finished)
    running = await _insert_attempt(db, contest["id"], "@later", 2)
    for attempt_id, name, total in ((winner, "w", 15), (runner_up, "r", 5)):
        await db.execute(
            "INSERT INTO leaderboard (contest_id, attempt_id, participant_name, total_score,"
            " score_changed_at, started_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, now())",
            (contest["id"], attempt_id, name, total, T0, T0),
        )
    for attempt_id, question_id, score in ((winner, second_q, 5.0), (winner, first_q, 10.0)):
        await db.execute(
            """
            INSERT INTO responses (attempt_id, question_id, contest_id, verdict, score,
                                   max_score, grader_version, graded_at, grading_event_id)
            VALUES (%s, %s, %s, 'correct', %s, 10, 'mcq-1', now(), %s)
            """,
            (attempt_id, question_id, contest["id"], score, uuid.uuid4()),
        )

    response = await client.get(
        f"/api/v1/admin/contests/{contest['id']}/export.csv", headers=admin_headers
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "attempt_id", "participant_email", "participant_name", "status", "started_at",
        "finished_at", "total_score", "max_score", "rank", "counted_saves", "late_saves",
        "q1_score", "q2_score",
    ]  # fmt: skip
    assert [row[0] for row in rows[1:]] == [winner, runner_up, running]
    assert rows[1] == [
        winner, "'=HYPERLINK(evil)@example.com", "'=HYPERLINK(evil)", "submitted",
        "2024-11-01T10:01:00+00:00", "2024-11-01T10:40:00+00:00", "15.0", "20.0", "1", "3",
        "0", "10.0", "5.0",
    ]  # fmt: skip
    assert rows[2][2] == "'+plain"
    assert (rows[2][8], rows[2][11:]) == ("2", ["", ""])
    assert rows[3][2:4] == ["'@later", "active"]
    assert rows[3][8] == ""  # not on the leaderboard


async def test_export_of_unknown_contest_is_404_and_graders_may_not(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    grader_headers: dict[str, str],
    new_contest: NewContest,
) -> None:
    contest = await new_contest()

    unknown = await client.get(
        f"/api/v1/admin/contests/{uuid.uuid4()}/export.csv", headers=admin_headers
    )
    by_grader = await client.get(
        f"/api/v1/admin/contests/{contest['id']}/export.csv", headers=grader_headers
    )

    assert (unknown.status_code, by_grader.status_code) == (404, 403)


async def test_export_streams_ten_thousand_attempts(
    api_app: FastAPI,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await new_contest(questions=3)
    attempts = 10_000
    async with (
        db.cursor() as cursor,
        cursor.copy(
            "COPY attempts (id, contest_id, participant_id, participant_email, participant_name,"
            " started_at, status, total_score, max_score) FROM STDIN"
        ) as copy,
    ):
        for n in range(attempts):
            await copy.write_row(
                (uuid.uuid4(), contest["id"], uuid.uuid4(), f"p{n}@example.com", f"P {n}",
                 T0, "submitted", float(n % 30), 30.0)
            )  # fmt: skip
    body_messages = 0

    async def counting_app(scope: Any, receive: Any, send: Any) -> None:
        async def counting_send(message: Any) -> None:
            nonlocal body_messages
            if message["type"] == "http.response.body" and message.get("body"):
                body_messages += 1
            await send(message)

        await api_app(scope, receive, counting_send)

    transport = httpx.ASGITransport(app=counting_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        started = time.monotonic()
        response = await http.get(
            f"/api/v1/admin/contests/{contest['id']}/export.csv", headers=admin_headers
        )
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert len(rows) == attempts + 1
    assert len(rows[0]) == len(rows[-1]) == 14
    assert len({row[0] for row in rows[1:]}) == attempts
    # A header chunk, then one chunk per batch fetched from the server-side cursor.
    assert body_messages >= 1 + attempts // 1_000
    assert elapsed < 15
