"""A save that cannot apply is dead-lettered with its reason; an admin lists it and,
once the cause is fixed, replays it and the stream processes it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from avro_schemas.codec import encode
from avro_schemas.records import Record
from avro_schemas.topics import ATTEMPT_EVENTS
from streams.rules.timing import server_now
from tests.conftest import RunningPipeline
from tests.integration.conftest import CandidateSession, PublishContest, eventually

pytestmark = pytest.mark.integration

Query = Callable[..., Awaitable[list[dict[str, Any]]]]


async def test_list_and_replay_a_dead_letter(
    publish_contest: PublishContest,
    candidate: Callable[[str], CandidateSession],
    admin: httpx.AsyncClient,
    pipeline: RunningPipeline,
    query: Query,
) -> None:
    contest = await publish_contest()
    person = candidate(contest["id"])
    await person.start()
    # A save for an attempt that has not started yet (e.g. sent by a broken client).
    early_attempt = str(uuid.uuid4())
    save_id = str(uuid.uuid4())
    save = encode(
        Record.ANSWER_SAVED,
        {
            "event_id": save_id,
            "attempt_id": early_attempt,
            "contest_id": contest["id"],
            "client_ts": None,
            "server_ts": server_now(),
            "question_id": contest["questions"][0]["id"],
            "client_seq": 1,
            "selected_options": [1],
            "text": None,
            "language": None,
        },
    )
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await producer.start()
    try:
        topic = ATTEMPT_EVENTS.name(pipeline.settings.topic_prefix)
        await producer.send_and_wait(topic, save, key=early_attempt.encode())

        async def listed() -> dict[str, Any] | None:
            reply = await admin.get("/api/v1/admin/dead-letters/", params={"limit": 500})
            assert reply.status_code == 200, reply.text
            mine = [d for d in reply.json() if d["key"] == early_attempt]
            return mine[0] if mine else None

        letter = await eventually(listed, what="the dead letter")
        assert "never started" in letter["error"]
        assert letter["record"] == "io.elevate.attempt.AnswerSaved"
        assert letter["source_topic"] == topic

        started = encode(
            Record.ATTEMPT_STARTED,
            {  # the fix: the attempt now exists
                "event_id": str(uuid.uuid4()),
                "attempt_id": early_attempt,
                "contest_id": contest["id"],
                "client_ts": None,
                "server_ts": server_now(),
                "participant_email": "late@example.org",
                "participant_name": "Late",
                "ip": None,
                "user_agent": None,
            },
        )
        await producer.send_and_wait(topic, started, key=early_attempt.encode())
    finally:
        await producer.stop()

    replayed = await admin.post(
        f"/api/v1/admin/dead-letters/{letter['partition']}/{letter['offset']}/replay/"
    )
    assert replayed.status_code == 202, replayed.text

    async def processed() -> list[dict[str, Any]]:
        return await query("SELECT status FROM answer_saves WHERE event_id = %s", save_id)

    assert [r["status"] for r in await eventually(processed, what="the replayed save")] == [
        "counted"
    ]
    missing = await admin.post("/api/v1/admin/dead-letters/0/999999999/replay/")
    assert missing.status_code == 404


async def test_a_heartbeat_under_another_attempts_key_is_dead_lettered(
    publish_contest: PublishContest,
    candidate: Callable[[str], CandidateSession],
    admin: httpx.AsyncClient,
    pipeline: RunningPipeline,
) -> None:
    from avro_schemas.topics import HEARTBEATS

    contest = await publish_contest()
    person = candidate(contest["id"])
    await person.start()
    forged = encode(
        Record.HEARTBEAT,
        {
            "event_id": str(uuid.uuid4()),
            "attempt_id": person.attempt_id,
            "contest_id": contest["id"],
            "client_ts": None,
            "server_ts": server_now(),
            "kind": "blur",
            "ip": "6.6.6.6",
            "user_agent": "forged",
        },
    )
    wrong_key = str(uuid.uuid4())
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            HEARTBEATS.name(pipeline.settings.topic_prefix), forged, key=wrong_key.encode()
        )
    finally:
        await producer.stop()

    async def listed() -> dict[str, Any] | None:
        reply = await admin.get("/api/v1/admin/dead-letters/", params={"limit": 500})
        mine = [d for d in reply.json() if d["key"] == wrong_key]
        return mine[0] if mine else None

    letter = await eventually(listed, what="the forged heartbeat dead-lettered")
    assert "key" in letter["error"]


async def test_an_undecodable_attempt_total_is_dead_lettered_by_the_leaderboard(
    admin: httpx.AsyncClient, pipeline: RunningPipeline
) -> None:
    from avro_schemas.topics import SCORES_BY_CONTEST

    topic = SCORES_BY_CONTEST.name(pipeline.settings.topic_prefix)
    contest_key = str(uuid.uuid4())
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"\x00not avro", key=contest_key.encode())
    finally:
        await producer.stop()

    async def listed() -> dict[str, Any] | None:
        reply = await admin.get("/api/v1/admin/dead-letters/", params={"limit": 500})
        mine = [d for d in reply.json() if d["key"] == contest_key]
        return mine[0] if mine else None

    letter = await eventually(listed, what="the corrupt total dead-lettered")
    assert letter["source_topic"] == topic
    assert letter["consumer"] == "streams"  # the leaderboard's; no sink reads totals


async def test_saves_ingest_would_refuse_are_dead_lettered_by_the_stream_not_stored(
    publish_contest: PublishContest,
    candidate: Callable[[str], CandidateSession],
    admin: httpx.AsyncClient,
    pipeline: RunningPipeline,
    query: Query,
) -> None:
    """Saves produced straight to the topic get the checks ingest makes."""
    contest = await publish_contest()
    question_id = contest["questions"][0]["id"]
    person = candidate(contest["id"])
    await person.start()

    def save(**fields: Any) -> dict[str, Any]:
        return {
            "event_id": str(uuid.uuid4()),
            "attempt_id": person.attempt_id,
            "contest_id": contest["id"],
            "client_ts": None,
            "server_ts": server_now(),
            "question_id": question_id,
            "client_seq": 1,
            "selected_options": [0],
            "text": None,
            "language": None,
            **fields,
        }

    forged = {
        "unknown question": save(question_id=str(uuid.uuid4())),
        "option out of range": save(selected_options=[99]),
        "another contest": save(contest_id=str(uuid.uuid4())),
        "text on an MCQ": save(selected_options=None, text="a\x00b"),
        "id not a UUID": save(event_id="not-a-uuid"),
        "sequence out of range": save(client_seq=2**63 - 1),
    }
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await producer.start()
    try:
        for value in forged.values():
            await producer.send_and_wait(
                ATTEMPT_EVENTS.name(pipeline.settings.topic_prefix),
                encode(Record.ANSWER_SAVED, value),
                key=person.attempt_id.encode(),
            )
    finally:
        await producer.stop()
    assert (await person.save(question_id, 2, [1])).status_code == 202
    await person.submit()

    async def reported() -> list[dict[str, Any]] | None:
        reply = await admin.get("/api/v1/admin/dead-letters/", params={"limit": 500})
        mine = [
            d for d in reply.json() if d["key"] == person.attempt_id and d["consumer"] == "streams"
        ]
        return mine if len(mine) == len(forged) else None

    letters = await eventually(reported, what="every forged save dead-lettered")
    assert all(letter["record"] == "io.elevate.attempt.AnswerSaved" for letter in letters)

    async def stored() -> list[tuple[int, list[int]]] | None:
        # The genuine save reaches Postgres through the sink, after the dead letters
        # (which the admin API reads from Kafka) can already be listed.
        rows = await query(
            "SELECT client_seq, selected_options FROM answer_saves WHERE attempt_id = %s",
            person.attempt_id,
        )
        return [(row["client_seq"], row["selected_options"]) for row in rows] or None

    # The forged saves came first in the partition, so once the genuine one is stored
    # any of them that had been stored would be too.
    assert await eventually(stored, what="the genuine save stored") == [(2, [1])]
