"""The pipeline on the real services: candidate actions in, results out in Postgres,
ClickHouse and the leaderboard."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from avro_schemas.codec import encode
from avro_schemas.records import Record
from avro_schemas.topics import ATTEMPT_EVENTS, DEAD_LETTERS
from streams.rules.timing import server_now
from tests.conftest import TEST_GRACE_SECONDS, RunningPipeline
from tests.integration.conftest import CandidateSession, PublishContest, eventually

pytestmark = pytest.mark.integration

Query = Callable[..., Awaitable[list[dict[str, Any]]]]
NewCandidate = Callable[[str], CandidateSession]


def question_ids(contest: dict[str, Any]) -> list[str]:
    return [q["id"] for q in contest["questions"]]


async def finished_attempt(query: Query, attempt_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        rows = await query(
            "SELECT * FROM attempts WHERE id = %s AND finished_at IS NOT NULL", attempt_id
        )
        return rows[0] if rows else None

    row: dict[str, Any] = await eventually(check, what=f"attempt {attempt_id} to finish")
    return row


async def test_highest_sequence_wins_and_the_submit_is_graded(
    publish_contest: PublishContest,
    candidate: NewCandidate,
    query: Query,
    admin: httpx.AsyncClient,
) -> None:
    contest = await publish_contest()
    single, multi = question_ids(contest)
    person = candidate(contest["id"])
    started = await person.start()
    assert [q["question_id"] for q in started["questions"]] == [single, multi]
    assert "correct_answers" not in str(started["questions"])  # no answer key leaks
    for seq, selected in ((1, [0]), (3, [1]), (2, [2])):  # delivered out of order
        assert (await person.save(single, seq, selected)).status_code == 202
    assert (await person.save(multi, 1, [0])).status_code == 202  # half right: 3 of 6
    assert (await person.submit()).status_code == 202

    attempt = await finished_attempt(query, person.attempt_id)
    assert attempt["status"] == "submitted"
    assert attempt["total_score"] == pytest.approx(7.0)
    assert attempt["max_score"] == pytest.approx(10.0)
    responses = await query(
        "SELECT question_id::text, verdict, score, selected_options, client_seq FROM responses "
        "WHERE attempt_id = %s ORDER BY score DESC",
        person.attempt_id,
    )
    assert [(r["verdict"], r["score"], r["client_seq"]) for r in responses] == [
        ("correct", 4.0, 3),
        ("partial", 3.0, 1),
    ]
    statuses = await query(
        "SELECT client_seq, status FROM answer_saves WHERE attempt_id = %s AND question_id = %s "
        "ORDER BY client_seq",
        person.attempt_id,
        single,
    )
    assert [(r["client_seq"], r["status"]) for r in statuses] == [
        (1, "counted"),
        (2, "superseded"),
        (3, "counted"),
    ]

    async def on_board() -> list[dict[str, Any]]:
        reply = await admin.get(f"/api/v1/admin/contests/{contest['id']}/leaderboard/")
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    board = await eventually(on_board, what="leaderboard row")
    assert board[0]["attempt_id"] == person.attempt_id and board[0]["rank"] == 1

    async def in_clickhouse() -> dict[str, int] | None:
        reply = await admin.get(f"/api/v1/admin/analytics/contests/{contest['id']}/events/")
        counts: dict[str, int] = reply.json()["by_record"]
        return counts if counts.get("AttemptScored") else None

    counts = await eventually(in_clickhouse, what="events in ClickHouse")
    assert counts["AnswerSaved"] == 4 and counts["AttemptStarted"] == 1
    assert counts["AttemptSubmitted"] == 1 and counts["ResponseGraded"] == 2


async def test_a_save_delivered_twice_is_one_row(
    publish_contest: PublishContest,
    candidate: NewCandidate,
    query: Query,
    pipeline: RunningPipeline,
) -> None:
    contest = await publish_contest()
    person = candidate(contest["id"])
    await person.start()
    event_id = str(uuid.uuid4())
    message = encode(
        Record.ANSWER_SAVED,
        {
            "event_id": event_id,
            "attempt_id": person.attempt_id,
            "contest_id": contest["id"],
            "client_ts": None,
            "server_ts": server_now(),
            "question_id": question_ids(contest)[0],
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
        for _ in range(2):
            await producer.send_and_wait(topic, message, key=person.attempt_id.encode())
    finally:
        await producer.stop()
    await person.submit()
    await finished_attempt(query, person.attempt_id)
    rows = await query("SELECT status FROM answer_saves WHERE event_id = %s", event_id)
    assert [r["status"] for r in rows] == ["counted"]
    attempt = await query(
        "SELECT counted_saves, total_score FROM attempts WHERE id = %s", person.attempt_id
    )
    assert attempt[0]["counted_saves"] == 1 and attempt[0]["total_score"] == 4.0


async def test_an_abandoned_attempt_expires_at_its_deadline_and_late_saves_do_not_count(
    publish_contest: PublishContest,
    candidate: NewCandidate,
    query: Query,
) -> None:
    contest = await publish_contest(duration_seconds=2)
    single, _ = question_ids(contest)
    person = candidate(contest["id"])
    await person.start()
    assert (await person.save(single, 1, [1])).status_code == 202  # on time, correct
    await asyncio.sleep(2 + TEST_GRACE_SECONDS + 0.5)
    late = await person.save(single, 2, [0])  # past deadline + grace: kept, not counted
    assert late.status_code == 202

    attempt = await finished_attempt(query, person.attempt_id)
    assert attempt["status"] == "expired"
    assert attempt["finished_at"] == attempt["started_at"] + timedelta(seconds=2)
    assert attempt["total_score"] == 4.0

    async def late_row() -> list[dict[str, Any]]:
        return await query(
            "SELECT status FROM answer_saves WHERE attempt_id = %s AND client_seq = 2",
            person.attempt_id,
        )

    assert [r["status"] for r in await eventually(late_row, what="late save row")] == ["late"]


async def test_a_submit_inside_the_grace_period_counts(
    publish_contest: PublishContest,
    candidate: NewCandidate,
    query: Query,
) -> None:
    contest = await publish_contest(duration_seconds=1)
    person = candidate(contest["id"])
    await person.start()
    await asyncio.sleep(1 + TEST_GRACE_SECONDS / 2)
    assert (await person.submit()).status_code == 202
    attempt = await finished_attempt(query, person.attempt_id)
    assert attempt["status"] == "submitted"
    assert attempt["finished_at"] > attempt["deadline"]


async def test_a_corrupt_message_is_dead_lettered_and_the_stream_goes_on(
    publish_contest: PublishContest,
    candidate: NewCandidate,
    query: Query,
    pipeline: RunningPipeline,
) -> None:
    contest = await publish_contest()
    person = candidate(contest["id"])
    await person.start()
    key = person.attempt_id.encode()
    poison = b"\xc3\x01" + secrets.token_bytes(20)
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            ATTEMPT_EVENTS.name(pipeline.settings.topic_prefix), poison, key=key
        )
    finally:
        await producer.stop()
    assert (await person.save(question_ids(contest)[0], 1, [1])).status_code == 202
    await person.submit()
    attempt = await finished_attempt(query, person.attempt_id)
    assert attempt["total_score"] == 4.0  # the message after the poison was processed

    consumer = AIOKafkaConsumer(
        DEAD_LETTERS.name(pipeline.settings.topic_prefix),
        bootstrap_servers=pipeline.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        reports: dict[str, dict[str, str]] = {}  # by the consumer that gave up
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for m in messages:
                    if m.key == key and m.value == poison:
                        report = {k: v.decode() for k, v in m.headers}
                        reports[report["consumer"]] = report
            if "streams" in reports:
                break
    finally:
        await consumer.stop()
    assert "streams" in reports, "the corrupt message never reached the dead-letter topic"
    headers = reports["streams"]
    assert "unknown schema fingerprint" in headers["error"]
    assert headers["source_topic"] == ATTEMPT_EVENTS.name(pipeline.settings.topic_prefix)
    assert headers["source_partition"] == str(sent.partition)
    assert headers["source_offset"] == str(sent.offset)


async def test_long_answers_to_many_questions_do_not_overflow_the_attempt_state(
    publish_contest: PublishContest,
    candidate: NewCandidate,
    query: Query,
) -> None:
    essay = {
        "type": "subjective",
        "content": {"question": "Explain consistency models."},
        "scoring": {"max_marks": 5},
    }
    contest = await publish_contest(questions=[essay] * 18)
    person = candidate(contest["id"])
    await person.start()
    long_text = "x" * 65_000  # just under the 64 KiB answer limit: 1.2 MB of answers
    for seq, question in enumerate(question_ids(contest), start=1):
        reply = await person.client.post(
            f"/api/v1/attempt/{person.attempt_id}/save",
            json={"question_id": question, "client_seq": seq, "text": long_text},
            headers=person.auth,
        )
        assert reply.status_code == 202, reply.text
    assert (await person.submit()).status_code == 202
    attempt = await finished_attempt(query, person.attempt_id)
    assert attempt["status"] == "submitted" and attempt["counted_saves"] == 18
    pending = await query(
        "SELECT count(*) AS n FROM responses WHERE attempt_id = %s AND verdict = 'pending_manual'",
        person.attempt_id,
    )
    assert pending == [{"n": 18}]
