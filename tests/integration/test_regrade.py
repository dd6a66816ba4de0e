"""A corrected answer key regrades finished attempts through the stream: the new score
replaces the old everywhere, the leaderboard time is the original save's, and the same
regrade twice changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import CandidateSession, PublishContest, eventually

pytestmark = pytest.mark.integration

Query = Callable[..., Awaitable[list[dict[str, Any]]]]


async def test_a_corrected_key_regrades_and_a_repeat_changes_nothing(
    publish_contest: PublishContest,
    candidate: Callable[[str], CandidateSession],
    admin: httpx.AsyncClient,
    query: Query,
) -> None:
    contest = await publish_contest()
    single = contest["questions"][0]["id"]
    person = candidate(contest["id"])
    await person.start()
    saved = await person.save(single, 1, [0])  # wrong under the published key (1)
    assert saved.status_code == 202
    assert (await person.submit()).status_code == 202

    async def total(expected: float) -> list[dict[str, Any]]:
        return await query(
            "SELECT total_score, score_changed_at FROM attempts WHERE id = %s AND total_score = %s",
            person.attempt_id,
            expected,
        )

    await eventually(lambda: total(0.0), what="the first grading")
    fix = await admin.post(
        f"/api/v1/admin/questions/{single}/regrade/",
        json={"correct_answer": 0, "reason": "key was wrong"},
    )
    assert fix.status_code == 202, fix.text
    assert fix.json()["revision_changed"] and fix.json()["regrades_requested"] == 1

    regraded = (await eventually(lambda: total(4.0), what="the regrade"))[0]
    saved_at = (
        await query("SELECT server_ts FROM answer_saves WHERE attempt_id = %s", person.attempt_id)
    )[0]["server_ts"]
    assert regraded["score_changed_at"] == saved_at  # ranks by when it was answered

    async def on_board() -> list[dict[str, Any]]:
        return await query(
            "SELECT total_score FROM leaderboard WHERE attempt_id = %s AND total_score = 4",
            person.attempt_id,
        )

    await eventually(on_board, what="the leaderboard row replaced")

    def snapshot_sql() -> str:
        return (
            "SELECT (SELECT count(*) FROM grading_results WHERE attempt_id = %(a)s) AS g,"
            " (SELECT graded_at FROM attempts WHERE id = %(a)s) AS at,"
            " (SELECT updated_at FROM leaderboard WHERE attempt_id = %(a)s) AS lb"
        )

    async def snapshot() -> dict[str, Any]:
        rows = await query(snapshot_sql().replace("%(a)s", "%s"), *[person.attempt_id] * 3)
        return rows[0]

    before = await snapshot()
    again = await admin.post(
        f"/api/v1/admin/questions/{single}/regrade/", json={"correct_answer": 0}
    )
    assert again.status_code == 202 and not again.json()["revision_changed"]
    by_attempt = await admin.post(f"/api/v1/admin/grading/regrade/{person.attempt_id}/")
    assert by_attempt.status_code == 202, by_attempt.text
    await asyncio.sleep(3)  # time for anything the repeat would (wrongly) change
    assert await snapshot() == before
