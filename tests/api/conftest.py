"""Fixtures of the admin API tests: the app in-process over the session's database,
with a topic prefix of its own."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from api.admins import create_admin
from api.main import create_app
from avro_schemas.codec import Decoded, decode
from avro_schemas.topics import ALL_TOPICS, DEFINITIONS
from elevate.settings import Settings

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


class DefinitionsTail:
    """Reads what is appended to the DEFINITIONS topic after it was opened."""

    def __init__(self, consumer: AIOKafkaConsumer, partition: TopicPartition) -> None:
        self._consumer = consumer
        self._partition = partition

    async def read(self, count: int, *, wait_seconds: float = 20.0) -> list[tuple[str, Decoded]]:
        """The next `count` messages as (key, decoded record); fails after `wait_seconds`."""
        messages: list[tuple[str, Decoded]] = []
        deadline = time.monotonic() + wait_seconds
        while len(messages) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"got {len(messages)} of {count} definitions: {messages}"
            batches = await self._consumer.getmany(
                self._partition, timeout_ms=int(min(remaining, 1.0) * 1000)
            )
            for record in batches.get(self._partition, []):
                assert record.key is not None
                messages.append((record.key.decode(), decode(record.value)))
        return messages


@pytest.fixture
def definitions_tail(api_settings: Settings, api_app: FastAPI) -> Callable[[], Any]:
    """`async with definitions_tail() as tail:` reads definitions sent from then on."""

    @asynccontextmanager
    async def open_tail() -> AsyncIterator[DefinitionsTail]:
        partition = TopicPartition(DEFINITIONS.name(api_settings.topic_prefix), 0)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=api_settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign([partition])
            end = (await consumer.end_offsets([partition]))[partition]
            consumer.seek(partition, end)
            yield DefinitionsTail(consumer, partition)
        finally:
            await consumer.stop()

    return open_tail
