"""Heartbeats to a live status and a risk score in Postgres, and a candidate who stops
beating is reported disconnected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.integration.conftest import CandidateSession, PublishContest, eventually

pytestmark = pytest.mark.integration

Query = Callable[..., Awaitable[list[dict[str, Any]]]]


async def test_blur_a_second_browser_and_silence_show_up_for_the_admin(
    publish_contest: PublishContest, candidate: Callable[[str], CandidateSession], query: Query
) -> None:
    contest = await publish_contest()
    person = candidate(contest["id"])
    await person.start()
    path = f"/api/v1/attempt/{person.attempt_id}/heartbeat"
    for kind, agent in (
        ("heartbeat", "Firefox"),
        ("blur", "Firefox"),
        ("focus", "Firefox"),
        ("heartbeat", "Chrome"),
    ):
        reply = await person.client.post(
            path, json={"kind": kind}, headers={**person.auth, "User-Agent": agent}
        )
        assert reply.status_code == 202, reply.text

    async def flagged() -> list[dict[str, Any]]:
        return await query(
            "SELECT connection, risk_score, reasons, blur_count, user_agents FROM proctoring "
            "WHERE attempt_id = %s AND connection = 'disconnected'",
            person.attempt_id,
        )

    # The test pipeline beats every second and counts three missed beats as a disconnect.
    rows = await eventually(flagged, seconds=30, what="the disconnection flag")
    row = rows[0]
    assert row["blur_count"] == 1
    assert row["user_agents"] == ["Firefox", "Chrome"]
    assert row["risk_score"] >= 4 + 10
    assert "2 browsers" in row["reasons"]


async def test_huge_user_agents_are_cut_and_the_stream_survives(
    publish_contest: PublishContest, candidate: Callable[[str], CandidateSession], query: Query
) -> None:
    contest = await publish_contest()
    person = candidate(contest["id"])
    await person.start()
    for n in range(25):  # 25 browsers of 60 KB each once crashed the worker
        reply = await person.client.post(
            f"/api/v1/attempt/{person.attempt_id}/heartbeat",
            json={},
            headers={**person.auth, "User-Agent": f"{n}" + "A" * 60_000},
        )
        assert reply.status_code == 202

    async def stored() -> list[dict[str, Any]]:
        return await query(
            "SELECT user_agents FROM proctoring WHERE attempt_id = %s "
            "AND jsonb_array_length(user_agents) = 20",
            person.attempt_id,
        )

    rows = await eventually(stored, what="the proctoring row")
    assert max(len(agent) for agent in rows[0]["user_agents"]) <= 256
    other = candidate(contest["id"])  # the worker still processes everyone else
    await other.start()
    assert (await other.save(contest["questions"][0]["id"], 1, [1])).status_code == 202
    assert (await other.submit()).status_code == 202

    async def graded() -> list[dict[str, Any]]:
        return await query(
            "SELECT total_score FROM attempts WHERE id = %s AND finished_at IS NOT NULL",
            other.attempt_id,
        )

    assert (await eventually(graded, what="the next attempt graded"))[0]["total_score"] == 4.0


async def test_the_admin_monitoring_view_shows_connection_and_risk(
    publish_contest: PublishContest,
    candidate: Callable[[str], CandidateSession],
    admin: Any,
    query: Query,
) -> None:
    contest = await publish_contest()
    person = candidate(contest["id"])
    await person.start()
    for kind in ("heartbeat", "blur"):
        reply = await person.client.post(
            f"/api/v1/attempt/{person.attempt_id}/heartbeat",
            json={"kind": kind},
            headers=person.auth,
        )
        assert reply.status_code == 202

    async def shown() -> dict[str, Any] | None:
        reply = await admin.get(f"/api/v1/admin/contests/{contest['id']}/attempts/")
        assert reply.status_code == 200, reply.text
        rows = [r for r in reply.json()["items"] if r["attempt_id"] == person.attempt_id]
        return rows[0] if rows and rows[0]["risk_score"] else None

    row = await eventually(shown, what="the attempt's proctoring in the monitoring view")
    assert row["connection"] in ("idle", "disconnected")
    assert row["risk_score"] >= 4
    assert "left the test tab 1 times" in row["proctoring_flags"]
