"""Server-authoritative time: the candidate's clock endpoint, resuming, extensions,
late submits, and autosave racing submit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from avro_schemas.codec import encode
from avro_schemas.records import Record
from avro_schemas.topics import ATTEMPT_EVENTS
from streams.rules.timing import server_now
from tests.conftest import TEST_GRACE_SECONDS, RunningPipeline
from tests.integration.conftest import CandidateSession, PublishContest, eventually

pytestmark = pytest.mark.integration

NewCandidate = Callable[[str], CandidateSession]
Query = Callable[..., Awaitable[list[dict[str, Any]]]]


async def clock_of(person: CandidateSession) -> dict[str, Any]:
    reply = await person.client.get(f"/api/v1/attempt/{person.attempt_id}", headers=person.auth)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_the_clock_is_the_servers_and_a_resume_keeps_the_first_start(
    publish_contest: PublishContest, candidate: NewCandidate
) -> None:
    contest = await publish_contest(duration_seconds=600)
    person = candidate(contest["id"])
    first = await person.start()
    clock = await clock_of(person)
    assert clock["status"] == "active"
    assert clock["deadline"] == first["deadline"]
    assert 590 < clock["remaining_seconds"] <= 600

    async def stream_knows() -> bool:
        return (await clock_of(person))["started_at"] == first["started_at"]

    await eventually(stream_knows, what="the stream's clock")
    await asyncio.sleep(1.1)
    again = await person.start()  # a reload: same attempt, same clock
    assert again["attempt_id"] == first["attempt_id"]
    assert again["started_at"] == first["started_at"]
    assert again["deadline"] == first["deadline"]


async def test_an_extension_moves_the_deadline_the_candidate_sees(
    publish_contest: PublishContest, candidate: NewCandidate, pipeline: RunningPipeline
) -> None:
    contest = await publish_contest(duration_seconds=600)
    person = candidate(contest["id"])
    started = await person.start()
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await producer.start()
    try:
        extension = {
            "event_id": str(uuid.uuid4()),
            "attempt_id": person.attempt_id,
            "contest_id": contest["id"],
            "client_ts": None,
            "server_ts": server_now(),
            "extra_seconds": 300,
            "admin": "test",
        }
        await producer.send_and_wait(
            ATTEMPT_EVENTS.name(pipeline.settings.topic_prefix),
            encode(Record.TIME_EXTENDED, extension),
            key=person.attempt_id.encode(),
        )
    finally:
        await producer.stop()
    expected = datetime.fromisoformat(started["deadline"]) + timedelta(seconds=300)

    async def extended() -> bool:
        return datetime.fromisoformat((await clock_of(person))["deadline"]) == expected

    await eventually(extended, what="the extended deadline")
    assert (await clock_of(person))["extension_seconds"] == 300


async def test_a_submit_past_deadline_and_grace_is_refused_and_one_inside_grace_is_not(
    publish_contest: PublishContest, candidate: NewCandidate, query: Query
) -> None:
    contest = await publish_contest(duration_seconds=1)
    late, in_grace = candidate(contest["id"]), candidate(contest["id"])
    await late.start()
    await in_grace.start()
    await asyncio.sleep(1 + TEST_GRACE_SECONDS / 2)
    assert (await in_grace.submit()).status_code == 202
    await asyncio.sleep(TEST_GRACE_SECONDS / 2 + 0.5)
    refused = await late.submit()
    # Refused either way: past deadline + grace, or already expired by the sweep.
    assert refused.status_code == 409 and "deadline" in refused.json()["detail"]

    async def both() -> dict[str, str] | None:
        found = await query(
            "SELECT id::text, status FROM attempts WHERE id IN (%s, %s) "
            "AND finished_at IS NOT NULL",
            late.attempt_id,
            in_grace.attempt_id,
        )
        return {r["id"]: r["status"] for r in found} if len(found) == 2 else None

    statuses = await eventually(both, what="both attempts to finish")
    assert statuses == {late.attempt_id: "expired", in_grace.attempt_id: "submitted"}
    assert (await clock_of(late))["status"] == "expired"
    after_expiry = await late.submit()  # the clock now says expired: refused, with why
    assert after_expiry.status_code == 409 and "expired" in after_expiry.json()["detail"]


async def test_autosave_racing_submit_never_fails_and_never_loses_an_answer(
    publish_contest: PublishContest,
    candidate: NewCandidate,
    query: Query,
    ingest: httpx.AsyncClient,
) -> None:
    contest = await publish_contest()
    question = contest["questions"][0]["id"]
    people = [candidate(contest["id"]) for _ in range(100)]
    await asyncio.gather(*(p.start() for p in people))
    replies = await asyncio.gather(
        *(r for p in people for r in (p.save(question, 1, [1]), p.submit()))
    )
    assert all(r.status_code == 202 for r in replies), {r.status_code for r in replies}
    ids = [p.attempt_id for p in people]

    async def all_finished() -> list[dict[str, Any]] | None:
        rows = await query(
            "SELECT a.id::text AS attempt, s.status AS save, r.client_seq AS graded_seq "
            "FROM attempts a JOIN answer_saves s ON s.attempt_id = a.id "
            "JOIN responses r ON r.attempt_id = a.id AND r.question_id = s.question_id "
            "WHERE a.id = ANY(%s::uuid[]) AND a.finished_at IS NOT NULL",
            ids,
        )
        return rows if len(rows) == len(people) else None

    rows = await eventually(all_finished, what="every attempt graded with its save stored")
    for row in rows:  # stored either way; graded exactly when it came before the submit
        assert row["save"] in ("counted", "after_submit")
        assert (row["graded_seq"] == 1) == (row["save"] == "counted")
