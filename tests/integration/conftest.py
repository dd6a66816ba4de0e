"""Fixtures of the pipeline tests: an admin and candidates talking to the running roles."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from api.admins import create_admin
from tests.conftest import RunningPipeline

pytestmark = pytest.mark.integration

MCQ_SINGLE = {
    "type": "mcq_single",
    "content": {"question": "2 + 2 = ?", "options": ["3", "4", "5", "22"], "correct_answer": 1},
    "scoring": {"max_marks": 4, "negative_marks": 1},
}
MCQ_MULTI = {
    "type": "mcq_multi",
    "content": {
        "question": "Which are even?",
        "options": ["2", "3", "4", "5"],
        "correct_answers": [0, 2],
    },
    "scoring": {"max_marks": 6, "partial_credit": True, "negative_marks": 1},
}


@pytest.fixture(scope="session")
async def admin(pipeline: RunningPipeline) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the admin API, logged in as an admin."""
    password = secrets.token_urlsafe(12)
    create_admin(pipeline.settings.postgres_dsn, "pipeline-admin", password, "admin")
    async with httpx.AsyncClient(base_url=pipeline.api_url, timeout=30) as client:
        reply = await client.post(
            "/api/v1/auth/token", json={"username": "pipeline-admin", "password": password}
        )
        assert reply.status_code == 200, reply.text
        client.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
        yield client


@pytest.fixture(scope="session")
async def ingest(pipeline: RunningPipeline) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pipeline.ingest_url, timeout=30) as client:
        yield client


PublishContest = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def publish_contest(admin: httpx.AsyncClient, ingest: httpx.AsyncClient) -> PublishContest:
    """`await publish_contest(duration_seconds=60, questions=[...], opens_in=...)`: a
    published contest that ingest already knows."""

    async def publish(
        duration_seconds: int = 600,
        questions: list[dict[str, Any]] | None = None,
        opens_in: timedelta = timedelta(minutes=-1),
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        start = now + opens_in
        created = await admin.post(
            "/api/v1/admin/contests/",
            json={
                "name": f"Pipeline test {secrets.token_hex(3)}",
                "start_at": start.isoformat(),
                "end_at": (start + timedelta(hours=2)).isoformat(),
                "duration_seconds": duration_seconds,
            },
        )
        assert created.status_code == 201, created.text
        contest_id = created.json()["id"]
        for position, body in enumerate(questions or [MCQ_SINGLE, MCQ_MULTI]):
            made = await admin.post(
                "/api/v1/admin/questions/",
                json={**body, "contest_id": contest_id, "position": position},
            )
            assert made.status_code == 201, made.text
        published = await admin.post(f"/api/v1/admin/contests/{contest_id}/publish/")
        assert published.status_code == 200, published.text
        await until_startable(ingest, contest_id)
        detail = (await admin.get(f"/api/v1/admin/contests/{contest_id}/")).json()
        assert isinstance(detail, dict)
        return detail

    return publish


class CandidateSession:
    """One candidate's attempt through the ingest API."""

    def __init__(self, client: httpx.AsyncClient, contest_id: str, email: str) -> None:
        self.client = client
        self.contest_id = contest_id
        self.email = email
        self.attempt_id = ""
        self.token = ""
        self.started: dict[str, Any] = {}

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def start(self) -> dict[str, Any]:
        reply = await self.client.post(
            f"/api/v1/contest/{self.contest_id}/start", json={"email": self.email, "name": "T"}
        )
        assert reply.status_code == 202, reply.text
        self.started = reply.json()
        self.attempt_id, self.token = self.started["attempt_id"], self.started["token"]
        return self.started

    async def save(self, question_id: str, seq: int, selected: list[int]) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/attempt/{self.attempt_id}/save",
            json={"question_id": question_id, "client_seq": seq, "selected_options": selected},
            headers=self.auth,
        )

    async def submit(self) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/attempt/{self.attempt_id}/submit", json={}, headers=self.auth
        )


@pytest.fixture
def candidate(ingest: httpx.AsyncClient) -> Callable[[str], CandidateSession]:
    def make(contest_id: str) -> CandidateSession:
        return CandidateSession(ingest, contest_id, f"c-{secrets.token_hex(4)}@example.org")

    return make


@pytest.fixture
def query(pipeline: RunningPipeline) -> Callable[..., Awaitable[list[dict[str, Any]]]]:
    """Run SQL against the pipeline's database."""

    async def run(statement: str, *params: Any) -> list[dict[str, Any]]:
        async with await psycopg.AsyncConnection.connect(
            pipeline.settings.postgres_dsn, autocommit=True, row_factory=dict_row
        ) as conn:
            return await (await conn.execute(statement, params)).fetchall()

    return run


async def until_startable(ingest: httpx.AsyncClient, contest_id: str, tries: int = 100) -> None:
    """Wait until ingest has the published contest (it reads definitions from Kafka): a
    start with a broken body then stops answering 404."""
    for _ in range(tries):
        probe = await ingest.post(f"/api/v1/contest/{contest_id}/start", content=b"{")
        if probe.status_code != 404:
            return
        await asyncio.sleep(0.1)


async def eventually(
    check: Callable[[], Awaitable[Any]], seconds: float = 30, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)
