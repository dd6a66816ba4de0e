"""Coding questions through the pipeline: "Run code" on samples and custom input, and
grading on submit against hidden tests with subtasks, stored with per-test detail."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from avro_schemas.codec import encode
from avro_schemas.records import Record
from avro_schemas.topics import DEFINITIONS
from elevate.settings import Settings
from streams.rules.timing import server_now
from tests.conftest import RunningPipeline
from tests.integration.conftest import CandidateSession, eventually, until_startable

pytestmark = pytest.mark.integration

Query = Callable[..., Awaitable[list[dict[str, Any]]]]
ALMOST = "a, b = map(int, input().split())\nprint(a + b if a >= 0 else 0)\n"  # wrong for a < 0


def case(
    test_id: str, given: str, expected: str, weight: float = 1.0, subtask: str | None = None
) -> dict[str, Any]:
    return {
        "test_id": test_id,
        "input": given.encode(),
        "expected": expected.encode(),
        "weight": weight,
        "subtask": subtask,
    }


async def publish_coding_contest(settings: Settings, time_limit_ms: int = 2000) -> tuple[str, str]:
    """A contest with one coding question, published straight to the definitions topic."""
    contest_id, question_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = server_now()
    question = {
        "question_id": question_id,
        "contest_id": contest_id,
        "kind": "coding",
        "prompt": "Print the sum of two integers.",
        "options": [],
        "correct_options": [],
        "max_marks": 10.0,
        "negative_marks": 0.0,
        "partial_credit": False,
        "position": 0,
        "revision": 1,
        "rubric": "",
        "languages": ["python3", "cpp17", "java17"],
        "time_limit_ms": time_limit_ms,
        "memory_limit_mb": 256,
        "compare_mode": "trim",
        "abs_tolerance": 1e-6,
        "rel_tolerance": 1e-6,
        "sample_tests": [case("s1", "1 2\n", "3\n")],
        "hidden_tests": [
            case("h1", "2 3\n", "5\n", subtask="positive"),
            case("h2", "10 20\n", "30\n", subtask="positive"),
            case("h3", "-1 5\n", "4\n", weight=2.0, subtask="negative"),
        ],
    }
    contest = {
        "contest_id": contest_id,
        "name": "coding",
        "description": "",
        "start_at": now - timedelta(minutes=1),
        "end_at": now + timedelta(hours=1),
        "duration_seconds": 600,
        "question_ids": [question_id],
        "published_at": now,
        "revision": 1,
    }
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        topic = DEFINITIONS.name(settings.topic_prefix)
        await producer.send_and_wait(
            topic, encode(Record.QUESTION_DEFINITION, question), key=question_id.encode()
        )
        await producer.send_and_wait(
            topic, encode(Record.CONTEST_DEFINITION, contest), key=contest_id.encode()
        )
    finally:
        await producer.stop()
    return contest_id, question_id


async def run_code(person: CandidateSession, body: dict[str, Any]) -> dict[str, Any]:
    reply = await person.client.post(
        f"/api/v1/attempt/{person.attempt_id}/code/execute", json=body, headers=person.auth
    )
    assert reply.status_code == 202, reply.text
    job = reply.json()["job_id"]

    async def result() -> dict[str, Any] | None:
        polled = await person.client.get(
            f"/api/v1/attempt/{person.attempt_id}/code/result/{job}", headers=person.auth
        )
        return polled.json() if polled.status_code == 200 else None

    done: dict[str, Any] = await eventually(result, seconds=60, what="the code run")
    return done


async def test_run_code_then_grade_on_submit_with_subtasks(
    pipeline: RunningPipeline, ingest: httpx.AsyncClient, query: Query
) -> None:
    contest_id, question_id = await publish_coding_contest(pipeline.settings)
    person = CandidateSession(ingest, contest_id, f"coder-{uuid.uuid4().hex[:6]}@example.org")
    await until_startable(ingest, contest_id, tries=50)
    (shown,) = (await person.start())["questions"]
    assert shown["languages"] == ["python3", "cpp17", "java17"]
    assert shown["sample_tests"] == [{"input": "1 2\n", "output": "3\n"}]
    assert "10 20" not in str(shown)  # hidden tests stay hidden
    never_issued = await person.client.get(
        f"/api/v1/attempt/{person.attempt_id}/code/result/{uuid.uuid4()}", headers=person.auth
    )
    assert never_issued.status_code == 404, never_issued.text

    samples = await run_code(
        person, {"question_id": question_id, "language": "python3", "source": ALMOST}
    )
    assert samples["verdict"] == "AC" and samples["tests"][0]["stdout"] == "3\n"
    custom = await run_code(
        person,
        {
            "question_id": question_id,
            "language": "python3",
            "source": "print(input()[::-1], '\\u00e9\\U0001f600')",
            "custom_input": "abc\n",
        },
    )
    assert custom["verdict"] == "OK" and custom["tests"][0]["stdout"] == "cba é😀\n"
    broken = await run_code(
        person,
        {"question_id": question_id, "language": "cpp17", "source": "int main() { return x; }"},
    )
    assert broken["verdict"] == "CE" and "x" in broken["compile_output"]

    wrong_language = await person.client.post(
        f"/api/v1/attempt/{person.attempt_id}/code/execute",
        json={"question_id": question_id, "language": "cobol", "source": "x"},
        headers=person.auth,
    )
    assert wrong_language.status_code == 422 and wrong_language.json()["field"] == "language"

    saved = await person.client.post(
        f"/api/v1/attempt/{person.attempt_id}/save",
        json={"question_id": question_id, "client_seq": 1, "text": ALMOST, "language": "python3"},
        headers=person.auth,
    )
    assert saved.status_code == 202, saved.text
    assert (await person.submit()).status_code == 202

    async def graded() -> list[dict[str, Any]]:
        return await query(
            "SELECT verdict, score FROM responses WHERE attempt_id = %s "
            "AND verdict != 'pending_execution'",
            person.attempt_id,
        )

    rows = await eventually(graded, seconds=60, what="the coding response graded")
    assert rows == [{"verdict": "WA", "score": 5.0}]  # the "positive" subtask only
    runs = await query(
        "SELECT purpose, verdict, tests FROM code_executions WHERE attempt_id = %s "
        "AND purpose = 'grade'",
        person.attempt_id,
    )
    assert len(runs) == 1
    per_test = {t["test_id"]: t["verdict"] for t in runs[0]["tests"]}
    assert per_test == {"h1": "AC", "h2": "AC", "h3": "WA"}
    attempt = await query("SELECT total_score FROM attempts WHERE id = %s", person.attempt_id)
    assert attempt == [{"total_score": 5.0}]


async def test_a_question_with_megabytes_of_tests_publishes_and_runs(
    publish_contest: Callable[..., Awaitable[dict[str, Any]]], ingest: httpx.AsyncClient
) -> None:
    """Definitions over Kafka's default 1 MB message size go through the whole pipeline."""
    big_input = "7 8\n" + "0" * 900_000 + "\n"
    question = {
        "type": "coding",
        "content": {
            "question": "Sum of two numbers, with large tests",
            "coding": {
                "statement": "Read two integers and print their sum.",
                "languages": ["python3"],
                "time_limit_ms": 2000,
                "memory_limit_mb": 256,
                "sample_tests": [{"input": "1 2\n", "output": "3\n"}],
                "hidden_tests": [{"input": big_input, "output": "15\n"} for _ in range(3)],
            },
        },
        "scoring": {"max_marks": 10},
    }
    contest = await publish_contest(questions=[question])
    question_id = contest["questions"][0]["id"]
    person = CandidateSession(ingest, contest["id"], f"big-{uuid.uuid4().hex[:6]}@example.org")
    await person.start()
    ran = await run_code(
        person, {"question_id": question_id, "language": "python3", "source": "print(3)\n"}
    )
    assert ran["verdict"] == "AC"
