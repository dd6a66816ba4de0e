"""Participants and live attempts: monitoring, time extensions, invalidation."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka.errors import KafkaConnectionError

from avro_schemas.records import Record
from elevate.settings import Settings
from tests.api.conftest import SinkRows

pytestmark = pytest.mark.integration

ADMIN = "/api/v1/admin"
NewContest = Callable[..., Awaitable[dict[str, Any]]]
Tail = Callable[[], Any]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _live_contest(new_contest: NewContest, *, ends_in: timedelta) -> dict[str, Any]:
    """A contest that opened an hour ago, with 60-minute attempts."""
    now = datetime.now(UTC)
    return await new_contest(
        start_at=(now - timedelta(hours=1)).isoformat(),
        end_at=(now + ends_in).isoformat(),
        duration_minutes=60,
    )


async def test_participants_search_and_count_attempts(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    sink_rows: SinkRows,
) -> None:
    marker = uuid.uuid4().hex[:10]
    contest = await new_contest()
    for _ in range(2):
        await sink_rows.attempt(contest["id"], participant_email=f"ada.{marker}@example.com")
    await sink_rows.attempt(contest["id"], participant_email=f"bob.{marker}@example.com")

    found = await client.get(
        f"{ADMIN}/participants/", params={"search": marker.upper()}, headers=admin_headers
    )
    paged = await client.get(
        f"{ADMIN}/participants",
        params={"search": marker, "limit": 1, "offset": 1},
        headers=admin_headers,
    )

    assert found.status_code == 200, found.text
    items = found.json()["items"]
    assert [(p["email"], p["attempts"]) for p in items] == [
        (f"ada.{marker}@example.com", 2),
        (f"bob.{marker}@example.com", 1),
    ]
    assert paged.json()["total"] == 2
    assert [p["email"] for p in paged.json()["items"]] == [f"bob.{marker}@example.com"]


async def test_a_participants_attempts(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    sink_rows: SinkRows,
) -> None:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    first, second = await new_contest(), await new_contest()
    older = await sink_rows.attempt(first["id"], participant_email=email, status="submitted")
    newer = await sink_rows.attempt(
        second["id"], participant_email=email, started_at=datetime(2024, 11, 1, 11, tzinfo=UTC)
    )
    participant_id = (
        await client.get(f"{ADMIN}/participants/", params={"search": email}, headers=admin_headers)
    ).json()["items"][0]["id"]

    response = await client.get(
        f"{ADMIN}/participants/{participant_id}/attempts/", headers=admin_headers
    )
    missing = await client.get(
        f"{ADMIN}/participants/{uuid.uuid4()}/attempts/", headers=admin_headers
    )

    assert response.status_code == 200, response.text
    assert [a["attempt_id"] for a in response.json()["items"]] == [newer, older]
    assert [a["contest_id"] for a in response.json()["items"]] == [second["id"], first["id"]]
    assert missing.status_code == 404


async def test_contest_attempts_show_live_status(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    sink_rows: SinkRows,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await _live_contest(new_contest, ends_in=timedelta(hours=2))
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    running = await sink_rows.attempt(contest["id"], started_at=started)
    finished_deadline = started + timedelta(minutes=60)
    finished = await sink_rows.attempt(
        contest["id"],
        started_at=started - timedelta(minutes=1),
        status="submitted",
        deadline=finished_deadline,
        finished_at=started + timedelta(minutes=20),
        total_score=7.0,
        max_score=10.0,
    )
    question_id = str(uuid.uuid4())
    for status in ("counted", "counted", "superseded", "late"):
        await sink_rows.save(running, question_id, contest["id"], status=status)
    await db.execute(
        "INSERT INTO attempt_extensions (id, attempt_id, contest_id, extra_seconds, reason, admin)"
        " VALUES (%s, %s, %s, 300, 'wifi', 'test-admin')",
        (uuid.uuid4(), running, contest["id"]),
    )

    listed = await client.get(f"{ADMIN}/contests/{contest['id']}/attempts/", headers=admin_headers)
    only_active = await client.get(
        f"{ADMIN}/contests/{contest['id']}/attempts",
        params={"status": "active"},
        headers=admin_headers,
    )

    assert listed.status_code == 200, listed.text
    done, live = listed.json()["items"]
    assert (done["attempt_id"], live["attempt_id"]) == (finished, running)
    assert _at(live["deadline"]) == started + timedelta(minutes=65)
    assert 54 * 60 - 5 <= live["time_left_seconds"] <= 55 * 60
    assert live["extension_seconds"] == 300
    assert live["answers_saved"] == 2
    assert (live["status"], live["connection"], live["proctoring_flags"]) == ("active", None, [])
    assert _at(done["deadline"]) == finished_deadline
    assert done["time_left_seconds"] is None
    assert done["total_score"] == 7.0
    assert [a["attempt_id"] for a in only_active.json()["items"]] == [running]
    assert only_active.json()["total"] == 1


async def test_contest_attempts_of_unknown_contest_or_status(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()

    unknown = await client.get(f"{ADMIN}/contests/{uuid.uuid4()}/attempts/", headers=admin_headers)
    bad_status = await client.get(
        f"{ADMIN}/contests/{contest['id']}/attempts/",
        params={"status": "idle"},
        headers=admin_headers,
    )

    assert (unknown.status_code, bad_status.status_code) == (404, 422)


async def test_extend_sends_time_extended_and_returns_the_deadline(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    sink_rows: SinkRows,
    attempt_events_tail: Tail,
    db: psycopg.AsyncConnection[Any],
) -> None:
    contest = await _live_contest(new_contest, ends_in=timedelta(hours=2))
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    attempt_id = await sink_rows.attempt(contest["id"], started_at=started)
    url = f"{ADMIN}/attempts/{attempt_id}/extend/"

    async with attempt_events_tail() as events:
        first = await client.post(
            url, json={"minutes": 10, "reason": "power cut"}, headers=admin_headers
        )
        second = await client.post(
            url.rstrip("/"), json={"minutes": 5, "reason": "again"}, headers=admin_headers
        )
        sent = await events.read(2)

    assert first.status_code == 202, first.text
    body = first.json()
    assert _at(body["previous_deadline"]) == started + timedelta(minutes=60)
    assert _at(body["deadline"]) == started + timedelta(minutes=70)
    assert (body["extra_seconds"], body["total_extension_seconds"]) == (600, 600)
    assert second.json()["total_extension_seconds"] == 900
    assert _at(second.json()["deadline"]) == started + timedelta(minutes=75)
    [(key, record), (_, later)] = sent
    assert key == attempt_id
    assert record.name == Record.TIME_EXTENDED
    assert record.value["event_id"] == body["extension_id"]
    assert (record.value["attempt_id"], record.value["contest_id"]) == (attempt_id, contest["id"])
    assert (record.value["extra_seconds"], record.value["admin"]) == (600, "test-admin")
    assert record.value["client_ts"] is None
    assert later.value["extra_seconds"] == 300
    cursor = await db.execute(
        "SELECT extra_seconds, reason, admin FROM attempt_extensions WHERE attempt_id = %s"
        " ORDER BY created_at",
        (attempt_id,),
    )
    assert await cursor.fetchall() == [
        (600, "power cut", "test-admin"),
        (300, "again", "test-admin"),
    ]
    listed = await client.get(f"{ADMIN}/contests/{contest['id']}/attempts/", headers=admin_headers)
    assert _at(listed.json()["items"][0]["deadline"]) == started + timedelta(minutes=75)


async def test_extensions_add_up_to_the_configured_maximum(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    api_settings: Settings,
    new_contest: NewContest,
    sink_rows: SinkRows,
) -> None:
    contest = await _live_contest(new_contest, ends_in=timedelta(hours=3))
    attempt_id = await sink_rows.attempt(
        contest["id"], started_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    url = f"{ADMIN}/attempts/{attempt_id}/extend/"
    maximum = api_settings.max_time_extension_minutes

    over = await client.post(
        url, json={"minutes": maximum + 1, "reason": "x"}, headers=admin_headers
    )
    most = await client.post(
        url, json={"minutes": maximum - 1, "reason": "x"}, headers=admin_headers
    )
    last = await client.post(url, json={"minutes": 2, "reason": "x"}, headers=admin_headers)

    assert over.status_code == 422
    [error] = over.json()["detail"]
    assert error["loc"] == ["body", "minutes"]
    assert f"at most {maximum} minutes" in error["msg"]
    assert most.status_code == 202
    assert last.status_code == 422
    assert "at most 1 more" in last.json()["detail"][0]["msg"]


async def test_extend_refusals(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    grader_headers: dict[str, str],
    new_contest: NewContest,
    sink_rows: SinkRows,
) -> None:
    live = await _live_contest(new_contest, ends_in=timedelta(hours=2))
    ending = await _live_contest(new_contest, ends_in=timedelta(minutes=20))
    now = datetime.now(UTC)
    finished = await sink_rows.attempt(live["id"], started_at=now, status="submitted")
    # Started 61 minutes ago: its 60 minutes and the grace period are over.
    out_of_time = await sink_rows.attempt(live["id"], started_at=now - timedelta(minutes=61))
    # Its deadline is already the contest's end.
    at_the_end = await sink_rows.attempt(ending["id"], started_at=now - timedelta(minutes=5))
    running = await sink_rows.attempt(live["id"], started_at=now)
    body = {"minutes": 5, "reason": "x"}

    def extend(attempt_id: str | uuid.UUID, **kwargs: Any) -> Awaitable[httpx.Response]:
        return client.post(
            f"{ADMIN}/attempts/{attempt_id}/extend/",
            json=kwargs.pop("json", body),
            headers=kwargs.pop("headers", admin_headers),
        )

    assert (await extend(uuid.uuid4())).status_code == 404
    done = await extend(finished)
    assert done.status_code == 409
    assert "is submitted" in done.json()["detail"]
    late = await extend(out_of_time)
    assert late.status_code == 409
    assert "ran out of time" in late.json()["detail"]
    capped = await extend(at_the_end)
    assert capped.status_code == 409
    assert "ends with the contest" in capped.json()["detail"]
    assert (await extend(running, json={"minutes": 0, "reason": "x"})).status_code == 422
    assert (await extend(running, json={"minutes": 5, "reason": ""})).status_code == 422
    assert (await extend(running, headers=grader_headers)).status_code == 403


async def test_an_extension_kafka_did_not_take_is_not_kept(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    sink_rows: SinkRows,
    db: psycopg.AsyncConnection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contest = await _live_contest(new_contest, ends_in=timedelta(hours=2))
    attempt_id = await sink_rows.attempt(contest["id"], started_at=datetime.now(UTC))

    async def broker_down(*args: object, **kwargs: object) -> None:
        raise KafkaConnectionError("broker unreachable")

    monkeypatch.setattr("api.attempt_events.send_record", broker_down)
    response = await client.post(
        f"{ADMIN}/attempts/{attempt_id}/extend/",
        json={"minutes": 5, "reason": "x"},
        headers=admin_headers,
    )

    assert response.status_code == 503
    assert "nothing was changed" in response.json()["detail"]
    cursor = await db.execute(
        "SELECT count(*) FROM attempt_extensions WHERE attempt_id = %s", (attempt_id,)
    )
    assert await cursor.fetchone() == (0,)


async def test_invalidate_sends_attempt_invalidated_once(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    sink_rows: SinkRows,
    attempt_events_tail: Tail,
) -> None:
    contest = await new_contest()
    attempt_id = await sink_rows.attempt(contest["id"], status="submitted")
    url = f"{ADMIN}/attempts/{attempt_id}/invalidate/"

    async with attempt_events_tail() as events:
        first = await client.post(url, json={"reason": "second screen"}, headers=admin_headers)
        [(key, record)] = await events.read(1)
        again = await client.post(url, json={"reason": "second screen"}, headers=admin_headers)
        await events.assert_quiet()

    assert first.status_code == 202, first.text
    assert key == attempt_id
    assert record.name == Record.ATTEMPT_INVALIDATED
    assert record.value == {
        "event_id": first.json()["event_id"],
        "attempt_id": attempt_id,
        "contest_id": contest["id"],
        "client_ts": None,
        "server_ts": record.value["server_ts"],
        "reason": "second screen",
        "admin": "test-admin",
    }
    assert again.status_code == 409


async def test_invalidate_refusals(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    grader_headers: dict[str, str],
    new_contest: NewContest,
    sink_rows: SinkRows,
) -> None:
    contest = await new_contest()
    invalidated = await sink_rows.attempt(contest["id"], status="invalidated")
    running = await sink_rows.attempt(contest["id"])

    unknown = await client.post(
        f"{ADMIN}/attempts/{uuid.uuid4()}/invalidate/", json={"reason": "x"}, headers=admin_headers
    )
    already = await client.post(
        f"{ADMIN}/attempts/{invalidated}/invalidate/", json={"reason": "x"}, headers=admin_headers
    )
    no_reason = await client.post(
        f"{ADMIN}/attempts/{running}/invalidate/", json={}, headers=admin_headers
    )
    by_grader = await client.post(
        f"{ADMIN}/attempts/{running}/invalidate/", json={"reason": "x"}, headers=grader_headers
    )

    assert (unknown.status_code, already.status_code) == (404, 409)
    assert (no_reason.status_code, by_grader.status_code) == (422, 403)
