"""Results read from the sink tables: leaderboard order, per-attempt results, responses."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

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
    grader_headers: dict[str, str],
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
        f"/api/v1/admin/contests/{contest['id']}/leaderboard/", headers=grader_headers
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
    client: httpx.AsyncClient, grader_headers: dict[str, str]
) -> None:
    missing = uuid.uuid4()

    response = await client.get(f"/api/v1/admin/attempts/{missing}/", headers=grader_headers)

    assert response.status_code == 404
    assert response.json() == {"detail": f"attempt {missing} not found"}
