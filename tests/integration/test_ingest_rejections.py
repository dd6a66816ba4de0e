"""Bad candidate input gets a precise 4xx, and nothing of it reaches Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from tests.integration.conftest import CandidateSession, PublishContest

pytestmark = pytest.mark.integration


async def test_start_rejections(publish_contest: PublishContest, ingest: httpx.AsyncClient) -> None:
    contest = await publish_contest()
    path = f"/api/v1/contest/{contest['id']}/start"

    unknown = await ingest.post(
        f"/api/v1/contest/{uuid.uuid4()}/start", json={"email": "a@b.org", "name": "A"}
    )
    assert unknown.status_code == 404 and "not published" in unknown.json()["detail"]
    not_uuid = await ingest.post(
        "/api/v1/contest/abc/start", json={"email": "a@b.org", "name": "A"}
    )
    assert not_uuid.status_code == 422

    bad_email = await ingest.post(path, json={"email": "not-an-email", "name": "A"})
    assert bad_email.status_code == 422 and bad_email.json()["field"] == "email"
    missing = await ingest.post(path, json={"email": "a@b.org"})
    assert missing.status_code == 422 and "name" in missing.json()["detail"]
    not_json = await ingest.post(path, content=b"{nope")
    assert not_json.status_code == 422 and "JSON" in not_json.json()["detail"]
    extra = await ingest.post(path, json={"email": "a@b.org", "name": "A", "admin": True})
    assert extra.status_code == 422 and extra.json()["field"] == "admin"

    nul = await ingest.post(path, json={"email": "n@b.org", "name": "Eve\u0000Evil"})
    assert nul.status_code == 422 and nul.json()["field"] == "name"
    blank = await ingest.post(path, json={"email": "n@b.org", "name": "   "})
    assert blank.status_code == 422 and blank.json()["field"] == "name"

    later = await publish_contest(opens_in=timedelta(hours=1))
    closed = await ingest.post(
        f"/api/v1/contest/{later['id']}/start", json={"email": "a@b.org", "name": "A"}
    )
    assert closed.status_code == 409 and "opens at" in closed.json()["detail"]


async def test_save_rejections(
    publish_contest: PublishContest,
    candidate: Callable[[str], CandidateSession],
    ingest: httpx.AsyncClient,
) -> None:
    contest = await publish_contest()
    single, multi = (q["id"] for q in contest["questions"])
    person, other = candidate(contest["id"]), candidate(contest["id"])
    await person.start()
    await other.start()
    path = f"/api/v1/attempt/{person.attempt_id}/save"
    body = {"question_id": single, "client_seq": 1, "selected_options": [1]}

    assert (await ingest.post(path, json=body)).status_code == 401
    forged = await ingest.post(path, json=body, headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    foreign = await ingest.post(path, json=body, headers=other.auth)
    assert foreign.status_code == 403 and "another attempt" in foreign.json()["detail"]

    wrong_type = await ingest.post(path, json={**body, "client_seq": "one"}, headers=person.auth)
    assert wrong_type.status_code == 422 and wrong_type.json()["field"] == "client_seq"
    negative = await ingest.post(path, json={**body, "client_seq": -1}, headers=person.auth)
    assert negative.status_code == 422
    stranger = await ingest.post(
        path, json={**body, "question_id": str(uuid.uuid4())}, headers=person.auth
    )
    assert stranger.status_code == 422 and stranger.json()["field"] == "question_id"
    two_for_single = await ingest.post(
        path, json={**body, "selected_options": [0, 1]}, headers=person.auth
    )
    assert two_for_single.status_code == 422 and "at most one" in two_for_single.json()["detail"]
    out_of_range = await ingest.post(
        path, json={**body, "question_id": multi, "selected_options": [0, 9]}, headers=person.auth
    )
    assert out_of_range.status_code == 422 and "outside" in out_of_range.json()["detail"]

    huge = await ingest.post(
        path,
        content=b'{"text": "' + b"a" * 300_000 + b'"}',
        headers={**person.auth, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413

    for bad_time in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        far = await ingest.post(path, json={**body, "client_ts": bad_time}, headers=person.auth)
        assert far.status_code == 422 and far.json()["field"] == "client_ts"
    text_on_mcq = await ingest.post(path, json={**body, "text": "x"}, headers=person.auth)
    assert (
        text_on_mcq.status_code == 422 and "selected_options only" in text_on_mcq.json()["detail"]
    )

    ok = await ingest.post(path, json=body, headers=person.auth)
    assert ok.status_code == 202 and set(ok.json()) == {"event_id", "server_ts"}


async def test_an_attempt_over_its_rate_gets_429_with_retry_after(
    publish_contest: PublishContest,
    candidate: Callable[[str], CandidateSession],
) -> None:
    contest = await publish_contest()
    person = candidate(contest["id"])
    await person.start()
    question = contest["questions"][0]["id"]
    replies = [await person.save(question, seq, [1]) for seq in range(1, 61)]
    statuses = {r.status_code for r in replies}
    assert statuses == {202, 429}
    limited = next(r for r in replies if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert "too many requests" in limited.json()["detail"]
