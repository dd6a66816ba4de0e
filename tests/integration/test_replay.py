"""Replaying every result topic from offset 0 into Postgres changes nothing."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg_pool import AsyncConnectionPool

from sinks.consumer import SinkStats, run_sink
from sinks.postgres import TOPICS, PostgresWriter
from tests.conftest import RunningPipeline
from tests.integration.conftest import CandidateSession, PublishContest

pytestmark = pytest.mark.integration

SNAPSHOTS = {
    "attempts": "SELECT * FROM attempts ORDER BY id",
    "answer_saves": "SELECT * FROM answer_saves ORDER BY event_id",
    "responses": "SELECT * FROM responses ORDER BY attempt_id, question_id",
    "grading_results": "SELECT * FROM grading_results ORDER BY event_id",
    "leaderboard": "SELECT * FROM leaderboard ORDER BY contest_id, attempt_id",
    "participants": "SELECT * FROM participants ORDER BY id",
}


def snapshot(dsn: str) -> dict[str, list[Any]]:
    with psycopg.connect(dsn) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in SNAPSHOTS.items()}


async def total_messages(pipeline: RunningPipeline) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(spec.name(pipeline.settings.topic_prefix), p)
            for spec in TOPICS
            for p in range(spec.partitions)
        ]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def test_replaying_from_offset_zero_changes_no_row(
    publish_contest: PublishContest,
    candidate: Any,
    pipeline: RunningPipeline,
) -> None:
    contest = await publish_contest()
    person: CandidateSession = candidate(contest["id"])
    await person.start()
    await person.save(contest["questions"][0]["id"], 1, [1])
    await person.submit()

    dsn = pipeline.settings.postgres_dsn
    previous: dict[str, list[Any]] | None = None
    for _ in range(60):  # until the running sink has written all it will
        current = snapshot(dsn)
        finished = any(
            row[0] == uuid.UUID(person.attempt_id) and row[7] is not None
            for row in current["attempts"]
        )
        if finished and current == previous:
            break
        previous = current
        await asyncio.sleep(0.5)
    else:
        pytest.fail("the pipeline never settled")
    before = snapshot(dsn)

    messages = await total_messages(pipeline)
    stats, stop = SinkStats(), asyncio.Event()
    async with AsyncConnectionPool(dsn, min_size=1, max_size=2) as pool:
        replay = asyncio.create_task(
            run_sink(
                pipeline.settings,
                name=f"replay-{secrets.token_hex(4)}",
                topics=TOPICS,
                writer=PostgresWriter(pool),
                stats=stats,
                stop=stop,
            )
        )
        for _ in range(240):
            if stats.written + stats.dead_lettered >= messages:
                break
            await asyncio.sleep(0.25)
        stop.set()
        await replay
    # Other tests put deliberately corrupt messages on these topics: those are
    # dead-lettered again, everything else is written again.
    assert stats.written + stats.dead_lettered >= messages and stats.written > 0
    assert snapshot(dsn) == before
