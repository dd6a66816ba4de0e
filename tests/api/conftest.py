"""Fixtures of the admin API tests: the app in-process over the session's database,
with a topic prefix of its own."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from api.admins import create_admin
from api.main import create_app
from avro_schemas.codec import Decoded, decode
from avro_schemas.topics import ALL_TOPICS, ATTEMPT_EVENTS, DEFINITIONS, TopicSpec
from elevate.settings import Settings
from sinks.postgres import participant_id_for

ADMIN = ("test-admin", "admin-password-1")
GRADER = ("test-grader", "grader-password-1")


@pytest.fixture(scope="session")
def api_settings(service_settings: Settings, fresh_database: str) -> Settings:
    """Settings pointing at this session's database and a topic prefix of its own."""
    return Settings(
        ELEVATE_ENV="test",
        DATABASE_URL=fresh_database,
        TOPIC_PREFIX=f"test-{secrets.token_hex(6)}.",
        KAFKA_BOOTSTRAP_SERVERS=service_settings.kafka_bootstrap,
        PRODUCER_LINGER_MS=0,
    )


@pytest.fixture(scope="session")
def admin_accounts(api_settings: Settings) -> None:
    """One user of each role."""
    create_admin(api_settings.postgres_dsn, *ADMIN, "admin")
    create_admin(api_settings.postgres_dsn, *GRADER, "grader")


@pytest.fixture(scope="session")
async def api_app(api_settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running; the run's topics are deleted afterwards."""
    app = create_app(api_settings)
    async with app.router.lifespan_context(app):
        yield app
    admin = AIOKafkaAdminClient(bootstrap_servers=api_settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([spec.name(api_settings.topic_prefix) for spec in ALL_TOPICS])
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def client(api_app: FastAPI, admin_accounts: None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=api_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield http


async def _token(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post(
        "/api/v1/auth/token/", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(scope="session")
async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Authorization headers of a user with the admin role."""
    return {"Authorization": f"Bearer {await _token(client, *ADMIN)}"}


@pytest.fixture(scope="session")
async def grader_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Authorization headers of a user with the grader role."""
    return {"Authorization": f"Bearer {await _token(client, *GRADER)}"}


@pytest.fixture
async def db(api_settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A direct connection to the test database, for rows the sinks would write."""
    async with await psycopg.AsyncConnection.connect(
        api_settings.postgres_dsn, autocommit=True
    ) as conn:
        yield conn


CONTEST_BODY = {
    "name": "Python Assessment 2024",
    "description": "Test your Python skills",
    "start_at": "2024-11-01T10:00:00Z",
    "end_at": "2024-11-01T12:00:00Z",
    "duration_minutes": 120,
}


def mcq_body(contest_id: str, /, **overrides: Any) -> dict[str, Any]:
    """The original product's example question, changed by `overrides`."""
    body: dict[str, Any] = {
        "contest_id": contest_id,
        "type": "mcq",
        "content": {
            "question": "What is 2+2?",
            "options": ["2", "3", "4", "5"],
            "correct_answer": 2,
        },
        "scoring": {"max_marks": 10},
    }
    body.update(overrides)
    return body


@pytest.fixture
def contest_body() -> dict[str, Any]:
    """A valid contest-creation body (the original product's example)."""
    return dict(CONTEST_BODY)


@pytest.fixture
def question_body() -> Callable[..., dict[str, Any]]:
    """`question_body(contest_id, **overrides)`: a valid question-creation body."""
    return mcq_body


@pytest.fixture
def new_contest(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A factory of draft contests: `await new_contest(questions=2, **fields)`."""

    async def make(questions: int = 0, **fields: Any) -> dict[str, Any]:
        response = await client.post(
            "/api/v1/admin/contests/", json={**CONTEST_BODY, **fields}, headers=admin_headers
        )
        assert response.status_code == 201, response.text
        contest: dict[str, Any] = response.json()
        for number in range(questions):
            body = mcq_body(contest["id"])
            body["content"]["question"] = f"Question {number}"
            created = await client.post(
                "/api/v1/admin/questions/", json=body, headers=admin_headers
            )
            assert created.status_code == 201, created.text
        return contest

    return make


class TopicTail:
    """Reads what is appended to a topic, on any partition, after it was opened."""

    def __init__(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        self._consumer = consumer
        self._partitions = partitions

    async def read(self, count: int, *, wait_seconds: float = 20.0) -> list[tuple[str, Decoded]]:
        """The next `count` messages as (key, decoded record); fails after `wait_seconds`."""
        messages: list[tuple[str, Decoded]] = []
        deadline = time.monotonic() + wait_seconds
        while len(messages) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"got {len(messages)} of {count} records: {messages}"
            batches = await self._consumer.getmany(
                *self._partitions, timeout_ms=int(min(remaining, 1.0) * 1000)
            )
            for records in batches.values():
                for record in records:
                    assert record.key is not None
                    messages.append((record.key.decode(), decode(record.value)))
        assert len(messages) == count, f"expected {count} records, got {messages}"
        return messages

    async def assert_quiet(self, seconds: float = 1.0) -> None:
        """Fail if any message arrives within `seconds`."""
        batches = await self._consumer.getmany(*self._partitions, timeout_ms=int(seconds * 1000))
        sent = [decode(r.value) for records in batches.values() for r in records]
        assert not sent, f"expected no records, got {sent}"


def _topic_tail(settings: Settings, spec: TopicSpec) -> Callable[[], Any]:
    @asynccontextmanager
    async def open_tail() -> AsyncIterator[TopicTail]:
        topic = spec.name(settings.topic_prefix)
        partitions = [TopicPartition(topic, p) for p in range(spec.partitions)]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            for partition, end in (await consumer.end_offsets(partitions)).items():
                consumer.seek(partition, end)
            yield TopicTail(consumer, partitions)
        finally:
            await consumer.stop()

    return open_tail


@pytest.fixture
def definitions_tail(api_settings: Settings, api_app: FastAPI) -> Callable[[], Any]:
    """`async with definitions_tail() as tail:` reads definitions sent from then on."""
    return _topic_tail(api_settings, DEFINITIONS)


@pytest.fixture
def attempt_events_tail(api_settings: Settings, api_app: FastAPI) -> Callable[[], Any]:
    """`async with attempt_events_tail() as tail:` reads attempt events sent from then on."""
    return _topic_tail(api_settings, ATTEMPT_EVENTS)


T0 = datetime(2024, 11, 1, 10, tzinfo=UTC)


class SinkRows:
    """Writes the rows the Postgres sink would write, for tests that start no stream."""

    def __init__(self, db: psycopg.AsyncConnection[Any]) -> None:
        self.db = db

    async def participant(self, email: str, name: str = "Candidate") -> str:
        """A participant with the sink's id for `email`."""
        participant_id = participant_id_for(email)
        await self.db.execute(
            "INSERT INTO participants (id, email, name) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            (participant_id, email, name),
        )
        return participant_id

    async def attempt(self, contest_id: str, **fields: Any) -> str:
        """An attempt row (active unless `status` says otherwise); returns its id."""
        email = fields.pop("participant_email", f"{uuid.uuid4().hex[:10]}@example.com")
        name = fields.pop("participant_name", "Candidate")
        participant_id = await self.participant(email, name)
        row = {
            "id": str(uuid.uuid4()),
            "contest_id": contest_id,
            "participant_id": participant_id,
            "participant_email": email,
            "participant_name": name,
            "started_at": T0,
            **fields,
        }
        columns = ", ".join(row)
        placeholders = ", ".join(f"%({column})s" for column in row)
        await self.db.execute(f"INSERT INTO attempts ({columns}) VALUES ({placeholders})", row)
        return str(row["id"])

    async def response(
        self,
        attempt_id: str,
        question_id: str,
        contest_id: str,
        *,
        verdict: str = "pending_manual",
        score: float = 0.0,
        max_score: float = 10.0,
        text: str | None = None,
        client_seq: int | None = 1,
        selected: list[int] | None = None,
    ) -> None:
        """The current grade of one response."""
        await self.db.execute(
            """
            INSERT INTO responses (attempt_id, question_id, contest_id, verdict, score,
                                   max_score, client_seq, selected_options, text, saved_at,
                                   grader_version, graded_at, grading_event_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'mcq-1', now(), %s)
            """,
            (
                attempt_id,
                question_id,
                contest_id,
                verdict,
                score,
                max_score,
                client_seq,
                None if selected is None else Jsonb(selected),
                text,
                T0,
                uuid.uuid4(),
            ),
        )

    async def save(
        self,
        attempt_id: str,
        question_id: str,
        contest_id: str,
        *,
        status: str = "counted",
        client_seq: int = 1,
        language: str | None = None,
    ) -> None:
        """One save as the stream decided it."""
        await self.db.execute(
            """
            INSERT INTO answer_saves (event_id, attempt_id, contest_id, question_id,
                                      client_seq, status, language, server_ts)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (uuid.uuid4(), attempt_id, contest_id, question_id, client_seq, status, language, T0),
        )


@pytest.fixture
def sink_rows(db: psycopg.AsyncConnection[Any]) -> SinkRows:
    """Writes rows as the Postgres sink would."""
    return SinkRows(db)


@pytest.fixture
def new_published_contest(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """`await new_published_contest(questions=[body, ...], **fields)`: a published contest
    with these question bodies (contest_id filled in); its details as returned by GET."""

    async def make(questions: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
        created = await client.post(
            "/api/v1/admin/contests/", json={**CONTEST_BODY, **fields}, headers=admin_headers
        )
        assert created.status_code == 201, created.text
        contest_id = created.json()["id"]
        for body in questions or [mcq_body(contest_id)]:
            made = await client.post(
                "/api/v1/admin/questions/",
                json={**body, "contest_id": contest_id},
                headers=admin_headers,
            )
            assert made.status_code == 201, made.text
        published = await client.post(
            f"/api/v1/admin/contests/{contest_id}/publish/", headers=admin_headers
        )
        assert published.status_code == 200, published.text
        detail: dict[str, Any] = published.json()
        return detail

    return make
