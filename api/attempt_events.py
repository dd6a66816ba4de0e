"""Admin actions on attempts as records on the ATTEMPT_EVENTS topic, keyed by attempt.

The stream applies them in order with the candidate's own events: TimeExtended moves
the deadline, AttemptInvalidated takes the attempt off the leaderboard,
ManualGradeGiven and RegradeRequested grade a finished attempt again. Each record's
`event_id` is its idempotency key downstream, and the key of the API's own audit row.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import datetime

from aiokafka import AIOKafkaProducer

from avro_schemas.codec import encode
from avro_schemas.records import Record
from avro_schemas.topics import ATTEMPT_EVENTS
from elevate.kafka import send_record
from elevate.settings import Settings

# Regrade requests fanned out after a question correction get ids derived from what
# they regrade, so retrying the same correction sends the same records again.
REGRADE_NAMESPACE = uuid.UUID("6d1f2c4e-8a3b-4f5d-9c7e-1b2a3d4e5f60")
# Records in flight at once when fanning out; bounds memory for large contests.
FAN_OUT_BATCH = 500


def time_extended(
    event_id: uuid.UUID,
    attempt_id: uuid.UUID,
    contest_id: uuid.UUID,
    extra_seconds: int,
    admin: str,
    now: datetime,
) -> dict[str, object]:
    """The fields of a TimeExtended record."""
    return {
        "event_id": str(event_id),
        "attempt_id": str(attempt_id),
        "contest_id": str(contest_id),
        "client_ts": None,
        "server_ts": now,
        "extra_seconds": extra_seconds,
        "admin": admin,
    }


def attempt_invalidated(
    event_id: uuid.UUID,
    attempt_id: uuid.UUID,
    contest_id: uuid.UUID,
    reason: str,
    admin: str,
    now: datetime,
) -> dict[str, object]:
    """The fields of an AttemptInvalidated record."""
    return {
        "event_id": str(event_id),
        "attempt_id": str(attempt_id),
        "contest_id": str(contest_id),
        "client_ts": None,
        "server_ts": now,
        "reason": reason,
        "admin": admin,
    }


def manual_grade_given(
    event_id: uuid.UUID,
    attempt_id: uuid.UUID,
    contest_id: uuid.UUID,
    question_id: uuid.UUID,
    score: float,
    comment: str,
    grader: str,
    now: datetime,
) -> dict[str, object]:
    """The fields of a ManualGradeGiven record."""
    return {
        "event_id": str(event_id),
        "attempt_id": str(attempt_id),
        "contest_id": str(contest_id),
        "client_ts": None,
        "server_ts": now,
        "question_id": str(question_id),
        "score": score,
        "comment": comment,
        "grader": grader,
    }


def regrade_requested(
    event_id: uuid.UUID,
    attempt_id: uuid.UUID,
    contest_id: uuid.UUID,
    reason: str,
    admin: str,
    now: datetime,
    question_id: uuid.UUID | None = None,
    revision: int = 0,
) -> dict[str, object]:
    """The fields of a RegradeRequested record; a question's regrade names the revision
    the stream must know before it grades again."""
    return {
        "event_id": str(event_id),
        "attempt_id": str(attempt_id),
        "contest_id": str(contest_id),
        "client_ts": None,
        "server_ts": now,
        "reason": reason,
        "admin": admin,
        "question_id": str(question_id) if question_id is not None else None,
        "revision": revision,
    }


def question_regrade_event_id(
    attempt_id: uuid.UUID, question_id: uuid.UUID, revision: int
) -> uuid.UUID:
    """The RegradeRequested id for one attempt after a question reached `revision`."""
    return uuid.uuid5(REGRADE_NAMESPACE, f"{attempt_id}/{question_id}/r{revision}")


async def send_attempt_event(
    producer: AIOKafkaProducer,
    settings: Settings,
    record: Record,
    value: dict[str, object],
) -> None:
    """Send one attempt event keyed by its attempt, once the broker acknowledged it."""
    await send_record(producer, settings, ATTEMPT_EVENTS, record, value, str(value["attempt_id"]))


async def send_attempt_events(
    producer: AIOKafkaProducer,
    settings: Settings,
    record: Record,
    values: Iterable[dict[str, object]],
) -> int:
    """Send many attempt events, up to FAN_OUT_BATCH in flight, and wait until the broker
    acknowledged them all; returns how many were sent.

    One `send_and_wait` per record would wait a round trip each: 10,000 attempts would
    take seconds. Batches let the producer pack them while memory stays bounded.
    """
    topic = ATTEMPT_EVENTS.name(settings.topic_prefix)
    sent = 0
    pending: list[asyncio.Future[object]] = []
    for value in values:
        pending.append(
            await producer.send(topic, encode(record, value), key=str(value["attempt_id"]).encode())
        )
        if len(pending) >= FAN_OUT_BATCH:
            await asyncio.gather(*pending)
            sent += len(pending)
            pending = []
    if pending:
        await asyncio.gather(*pending)
        sent += len(pending)
    return sent
