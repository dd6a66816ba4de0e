"""Published definitions on the DEFINITIONS topic, built from `contests`/`questions` rows.

Every question goes out before its contest, all on the topic's single partition, so a
consumer that sees a ContestDefinition already holds every question it lists. The
topic is compacted and keyed by id: sending the same definitions again is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from avro_schemas.codec import encode
from avro_schemas.records import Record
from avro_schemas.topics import DEFINITIONS
from elevate.kafka import send_record
from elevate.settings import Settings

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
# Room left in a Kafka message for its key, headers and batch framing.
MESSAGE_OVERHEAD_BYTES = 4096


@dataclass(frozen=True)
class DefinitionMessage:
    """One record to send: which record, its key and its fields."""

    record: Record
    key: str
    value: dict[str, object]


def question_order(question: Row) -> tuple[int, Any, str]:
    """Questions run in position order; creation time and id break position ties."""
    return (int(question["position"]), question["created_at"], str(question["id"]))


def coding_fields(details: Mapping[str, Any] | None) -> dict[str, object]:
    """The QuestionDefinition fields of a coding question's `details` (a CodingSpec):
    languages, limits, comparison, and the tests as bytes with stable ids."""
    if not details:
        return {}
    comparison = details.get("comparison") or {"mode": "trim"}
    return {
        "languages": list(details["languages"]),
        "time_limit_ms": int(details["time_limit_ms"]),
        "memory_limit_mb": int(details["memory_limit_mb"]),
        "compare_mode": comparison["mode"],
        "abs_tolerance": float(comparison.get("abs_tol", 1e-6)),
        "rel_tolerance": float(comparison.get("rel_tol", 1e-6)),
        "sample_tests": [
            {
                "test_id": f"sample-{n}",
                "input": t["input"].encode(),
                "expected": t["output"].encode(),
                "weight": 1.0,
                "subtask": None,
            }
            for n, t in enumerate(details.get("sample_tests", []), start=1)
        ],
        "hidden_tests": [
            {
                "test_id": f"test-{n}",
                "input": t["input"].encode(),
                "expected": t["output"].encode(),
                "weight": float(t.get("weight", 1.0)),
                "subtask": t.get("subtask"),
            }
            for n, t in enumerate(details["hidden_tests"], start=1)
        ],
    }


def question_definition(question: Row) -> dict[str, object]:
    """The QuestionDefinition fields of a `questions` row."""
    return {
        "question_id": str(question["id"]),
        "contest_id": str(question["contest_id"]),
        "kind": str(question["kind"]),
        "prompt": question["prompt"],
        "options": [str(option) for option in question["options"]],
        "correct_options": [int(index) for index in question["correct_options"]],
        "max_marks": float(question["max_marks"]),
        "negative_marks": float(question["negative_marks"]),
        "partial_credit": bool(question["partial_credit"]),
        "position": int(question["position"]),
        "revision": int(question["revision"]),
        "rubric": question.get("rubric") or "",
        **coding_fields(question.get("details") if question["kind"] == "coding" else None),
    }


def contest_definition(contest: Row, questions: Sequence[Row]) -> dict[str, object]:
    """The ContestDefinition fields of a published `contests` row and its questions."""
    if contest["published_at"] is None:
        raise ValueError(f"contest {contest['id']} is not published")
    return {
        "contest_id": str(contest["id"]),
        "name": contest["name"],
        "description": contest["description"],
        "start_at": contest["start_at"],
        "end_at": contest["end_at"],
        "duration_seconds": int(contest["duration_seconds"]),
        "question_ids": [str(q["id"]) for q in sorted(questions, key=question_order)],
        "published_at": contest["published_at"],
        "revision": int(contest["revision"]),
    }


def question_messages(questions: Sequence[Row]) -> list[DefinitionMessage]:
    """The questions' definitions, in contest order."""
    return [
        DefinitionMessage(Record.QUESTION_DEFINITION, str(q["id"]), question_definition(q))
        for q in sorted(questions, key=question_order)
    ]


def definition_messages(contest: Row, questions: Sequence[Row]) -> list[DefinitionMessage]:
    """What publishing a contest sends, in order: its questions, then the contest."""
    return [
        *question_messages(questions),
        DefinitionMessage(
            Record.CONTEST_DEFINITION, str(contest["id"]), contest_definition(contest, questions)
        ),
    ]


def too_large_to_publish(messages: Sequence[DefinitionMessage]) -> list[str]:
    """Each definition Kafka would refuse for its size, with its size and the limit."""
    limit = (DEFINITIONS.max_message_bytes or 1024 * 1024) - MESSAGE_OVERHEAD_BYTES
    sizes = ((message, len(encode(message.record, message.value))) for message in messages)
    return [
        f"{message.record.name.lower().replace('_', ' ')} {message.key} is {size} bytes"
        f" encoded; at most {limit} can be published"
        for message, size in sizes
        if size > limit
    ]


async def send_definitions(
    producer: AIOKafkaProducer, settings: Settings, contest: Row, questions: Sequence[Row]
) -> None:
    """Send the contest's definitions, each acknowledged before the next is sent."""
    messages = definition_messages(contest, questions)
    for message in messages:
        await send_record(
            producer, settings, DEFINITIONS, message.record, message.value, message.key
        )
    log.info(
        "sent definitions of contest %s (%d questions)",
        contest["id"],
        len(messages) - 1,
        extra={"contest_id": str(contest["id"])},
    )
