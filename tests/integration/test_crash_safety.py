"""kill -9 of the stream worker and the Postgres sink in the middle of a burst: every
accepted answer is stored exactly once, every score is right, and the worker's table
state recovered from its changelog agrees with Postgres."""

from __future__ import annotations

import asyncio
import random
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from api.admins import create_admin
from avro_schemas.codec import decode
from avro_schemas.topics import CODE_RUNS
from elevate.settings import Settings
from streams.rules import attempt as rules
from streams.rules.attempt import ContestTiming, QuestionKey, SavedAnswer
from streams.rules.scoring import QuestionKind
from tests.conftest import isolated_env
from tests.integration.conftest import MCQ_MULTI, MCQ_SINGLE, until_startable

pytestmark = pytest.mark.integration

ATTEMPTS = 200
SAVES = 10_000
PROCESSES = {
    "streams": ["streams"],
    "ingest": ["ingest"],
    "api": ["api", "sink-clickhouse"],
    "sink-postgres": ["sink-postgres"],
}


@dataclass
class Roles:
    env: dict[str, str]
    home: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        with (self.home / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                [sys.executable, "-m", "elevate", "run", *PROCESSES[name]],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.running.values():
            process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def roles(
    service_settings: Settings, fresh_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Roles]:
    home = tmp_path_factory.mktemp("crash-home")
    env = isolated_env(service_settings, fresh_database, home)
    env.update(RATE_LIMIT_PER_ATTEMPT="0", RATE_LIMIT_PER_IP="0", METRICS_PORT="0")
    started = Roles(env, home)
    for name in PROCESSES:
        started.start(name)
    yield started
    started.stop_all()


async def _ready(url: str, roles: Roles) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in roles.home.glob("*.log")}
    pytest.fail(f"{url} never became ready: {logs}")


async def _publish(api: httpx.AsyncClient) -> dict[str, Any]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    contest = (
        await api.post(
            "/api/v1/admin/contests/",
            json={
                "name": "crash",
                "start_at": (now - timedelta(minutes=1)).isoformat(),
                "end_at": (now + timedelta(hours=1)).isoformat(),
                "duration_seconds": 1800,
            },
        )
    ).json()
    for position, body in enumerate([MCQ_SINGLE, MCQ_MULTI, MCQ_SINGLE]):
        made = await api.post(
            "/api/v1/admin/questions/",
            json={**body, "contest_id": contest["id"], "position": position},
        )
        assert made.status_code == 201, made.text
    assert (await api.post(f"/api/v1/admin/contests/{contest['id']}/publish/")).status_code == 200
    detail: dict[str, Any] = (await api.get(f"/api/v1/admin/contests/{contest['id']}/")).json()
    return detail


@asynccontextmanager
async def signed_in(roles: Roles) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Clients of the admin API (signed in as an admin) and of ingest, once both serve."""
    settings = Settings.model_validate(roles.env)
    ingest_url = f"http://127.0.0.1:{roles.env['INGEST_PORT']}"
    api_url = f"http://127.0.0.1:{roles.env['API_PORT']}"
    await _ready(f"{ingest_url}/readyz", roles)
    await _ready(f"{api_url}/readyz", roles)
    password = secrets.token_urlsafe(12)
    create_admin(settings.postgres_dsn, "crash-admin", password, "admin")
    limits = httpx.Limits(max_connections=64)
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=30) as api,
        httpx.AsyncClient(base_url=ingest_url, timeout=30, limits=limits) as ingest,
    ):
        token = (
            await api.post(
                "/api/v1/auth/token", json={"username": "crash-admin", "password": password}
            )
        ).json()
        api.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield api, ingest


def _count(settings: Settings, sql: str, params: tuple[Any, ...]) -> int:
    with psycopg.connect(settings.postgres_dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


async def _count_reaching(
    settings: Settings, expected: int, sql: str, params: tuple[Any, ...]
) -> int:
    """The count `sql` gives once it reaches `expected`, or after two minutes."""
    for _ in range(240):
        found = await asyncio.to_thread(_count, settings, sql, params)
        if found == expected:
            break
        await asyncio.sleep(0.5)
    return found


async def _start_attempts(
    ingest: httpx.AsyncClient, contest: dict[str, Any], count: int
) -> list[dict[str, Any]]:
    await until_startable(ingest, contest["id"])
    attempts: list[dict[str, Any]] = []
    for n in range(count):
        reply = await ingest.post(
            f"/api/v1/contest/{contest['id']}/start",
            json={"email": f"crash{n}@example.org", "name": f"C{n}"},
        )
        assert reply.status_code == 202, reply.text
        attempts.append(reply.json())
    return attempts


async def test_saves_that_waited_while_the_worker_was_down_are_applied_after_it_starts(
    roles: Roles,
) -> None:
    """The backlog a starting worker fetches first is applied, though nothing follows it:
    the agent was not yet iterating its stream while it loaded the definitions, and
    Faust drops what arrives for a stream nobody iterates."""
    settings = Settings.model_validate(roles.env)
    async with signed_in(roles) as (api, ingest):
        contest = await _publish(api)
        question = contest["questions"][0]
        attempts = await _start_attempts(ingest, contest, 12)

        started = await _count_reaching(
            settings,
            len(attempts),
            "SELECT count(*) FROM attempts WHERE contest_id = %s",
            (contest["id"],),
        )
        assert started == len(attempts)  # the worker has applied every start
        roles.kill("streams")
        saved: list[str] = []
        for attempt in attempts:  # one save each: no later event would reveal a gap
            reply = await ingest.post(
                f"/api/v1/attempt/{attempt['attempt_id']}/save",
                json={"question_id": question["id"], "client_seq": 1, "selected_options": [1]},
                headers={"Authorization": f"Bearer {attempt['token']}"},
            )
            assert reply.status_code == 202, reply.text
            saved.append(reply.json()["event_id"])
        roles.start("streams")

        stored = await _count_reaching(
            settings,
            len(saved),
            "SELECT count(*) FROM answer_saves WHERE event_id = ANY(%s::uuid[])",
            (saved,),
        )
        assert stored == len(saved), "saves of the backlog were lost"


async def test_killing_the_worker_and_the_sink_mid_burst_loses_and_duplicates_nothing(
    roles: Roles,
) -> None:
    settings = Settings.model_validate(roles.env)
    async with signed_in(roles) as (api, ingest):
        contest = await _publish(api)
        questions = contest["questions"]
        attempts = await _start_attempts(ingest, contest, ATTEMPTS)

        rng = random.Random(5)
        accepted: dict[str, list[tuple[str, int, list[int], str]]] = {
            a["attempt_id"]: [] for a in attempts
        }
        plan = [(rng.choice(attempts), seq) for seq in range(1, SAVES + 1)]
        accepted_ids: list[str] = []
        restarted: asyncio.Task[None] | None = None

        async def save(attempt: dict[str, Any], seq: int) -> None:
            question = rng.choice(questions)
            selected = [rng.randrange(len(question["content"]["options"]))]
            for _ in range(20):
                try:
                    reply = await ingest.post(
                        f"/api/v1/attempt/{attempt['attempt_id']}/save",
                        json={
                            "question_id": question["id"],
                            "client_seq": seq,
                            "selected_options": selected,
                        },
                        headers={"Authorization": f"Bearer {attempt['token']}"},
                    )
                except httpx.TransportError:
                    # A dropped keep-alive connection: resend, as a browser would (the
                    # same sequence number, so a save that did land is simply repeated).
                    await asyncio.sleep(0.2)
                    continue
                if reply.status_code == 202:
                    accepted[attempt["attempt_id"]].append(
                        (question["id"], seq, selected, reply.json()["server_ts"])
                    )
                    accepted_ids.append(reply.json()["event_id"])
                    return
                assert reply.status_code == 503, reply.text
                await asyncio.sleep(0.2)

        async def restart_after(seconds: float) -> None:
            await asyncio.sleep(seconds)
            roles.start("streams")
            roles.start("sink-postgres")

        for start in range(0, SAVES, 50):
            await asyncio.gather(*(save(a, seq) for a, seq in plan[start : start + 50]))
            if restarted is None and start >= SAVES * 0.3:
                roles.kill("streams")  # mid-burst, without a goodbye
                roles.kill("sink-postgres")
                restarted = asyncio.create_task(restart_after(2))
        assert restarted is not None
        await restarted
        total = sum(len(v) for v in accepted.values())
        assert total == SAVES

        for attempt in attempts:
            reply = await ingest.post(
                f"/api/v1/attempt/{attempt['attempt_id']}/submit",
                json={},
                headers={"Authorization": f"Bearer {attempt['token']}"},
            )
            assert reply.status_code == 202, reply.text

        def counts() -> tuple[int, int]:
            """Accepted saves stored, and finished attempts."""
            with psycopg.connect(settings.postgres_dsn) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM answer_saves"
                    "  WHERE event_id = ANY(%(ids)s::uuid[])),"
                    " (SELECT count(*) FROM attempts WHERE contest_id = %(c)s"
                    "  AND finished_at IS NOT NULL)",
                    {"c": contest["id"], "ids": accepted_ids},
                ).fetchone()
                assert row is not None
                return int(row[0]), int(row[1])

        for _ in range(600):
            stored, finished = await asyncio.to_thread(counts)
            if stored >= SAVES and finished >= ATTEMPTS:
                break
            await asyncio.sleep(0.5)
        assert (stored, finished) == (SAVES, ATTEMPTS), "accepted saves were lost"
        saves_in_postgres = _count(
            settings, "SELECT count(*) FROM answer_saves WHERE contest_id = %s", (contest["id"],)
        )

        clickhouse: dict[str, int] = {}
        for _ in range(240):
            reply = await api.get(f"/api/v1/admin/analytics/contests/{contest['id']}/events/")
            clickhouse = reply.json()["by_record"]
            if clickhouse.get("AnswerSaved", 0) >= saves_in_postgres:
                break
            await asyncio.sleep(0.5)
        # Every save stored once in each store (a resend after a dropped connection is
        # a save of its own, in both).
        assert clickhouse["AnswerSaved"] == saves_in_postgres >= SAVES

    keys = {
        q["id"]: QuestionKey(
            q["id"],
            QuestionKind(q["type"]),
            len(q["content"]["options"]),
            frozenset(q["content"]["correct_answers"]),
            q["scoring"]["max_marks"],
            q["scoring"]["negative_marks"],
            q["scoring"]["partial_credit"],
        )
        for q in questions
    }
    with psycopg.connect(settings.postgres_dsn) as conn:
        stored = {
            str(r[0]): (r[1], r[2])
            for r in conn.execute(
                "SELECT a.id, a.total_score, a.counted_saves FROM attempts a "
                "WHERE a.contest_id = %s",
                (contest["id"],),
            )
        }
        counted = dict(
            (str(r[0]), r[1])
            for r in conn.execute(
                "SELECT attempt_id, count(*) FROM answer_saves WHERE contest_id = %s "
                "AND status = 'counted' GROUP BY attempt_id",
                (contest["id"],),
            )
        )
    from datetime import UTC, datetime

    wrong = []
    for attempt in attempts:
        state = rules.start_attempt(
            None,
            attempt_id=attempt["attempt_id"],
            contest_id=contest["id"],
            participant_email="x",
            participant_name="x",
            server_ts=datetime.fromisoformat(attempt["started_at"]),
            contest=ContestTiming(1800, datetime.now(UTC) + timedelta(hours=1)),
        )
        for question_id, seq, selected, server_ts in sorted(
            accepted[attempt["attempt_id"]], key=lambda s: s[3]
        ):
            rules.record_save(
                state,
                question_id,
                SavedAnswer(f"{seq}", seq, datetime.fromisoformat(server_ts), selected),
                30,
            )
        expected = rules.grade_attempt(state, keys).total_score
        total, counted_saves = stored[attempt["attempt_id"]]
        if abs(total - expected) > 1e-6 or counted_saves != counted.get(attempt["attempt_id"], 0):
            wrong.append((attempt["attempt_id"], total, expected, counted_saves))
    assert not wrong, wrong[:5]


async def _offset_of(settings: Settings, topic: str, event_id: str) -> tuple[int, int]:
    """(partition, offset) of the request with this event id."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(CODE_RUNS.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    if decode(record.value).value["event_id"] == event_id:
                        return record.partition, record.offset
    finally:
        await consumer.stop()
    raise AssertionError(f"request {event_id} is not on {topic}")


async def _committed(settings: Settings, group: str, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return offsets[TopicPartition(topic, partition)].offset


async def test_a_slow_run_in_flight_when_the_worker_dies_runs_after_restart(
    roles: Roles,
) -> None:
    """With several runs at once per worker, the fast runs behind a slow one finish,
    the committed offset stays at the slow one, and after kill -9 and a restart the
    slow one runs."""
    from tests.integration.conftest import CandidateSession
    from tests.integration.test_coding import publish_coding_contest

    assert int(roles.env.get("CODE_RUN_CONCURRENCY", "4")) > 1
    settings = Settings.model_validate(roles.env)
    ingest_url = f"http://127.0.0.1:{roles.env['INGEST_PORT']}"
    await _ready(f"{ingest_url}/readyz", roles)
    contest_id, question_id = await publish_coding_contest(settings, time_limit_ms=15_000)
    async with httpx.AsyncClient(base_url=ingest_url, timeout=30) as ingest:
        await until_startable(ingest, contest_id)
        person = CandidateSession(ingest, contest_id, "slow@example.org")
        await person.start()

        async def execute(source: str) -> str:
            reply = await ingest.post(
                f"/api/v1/attempt/{person.attempt_id}/code/execute",
                json={"question_id": question_id, "language": "python3", "source": source},
                headers=person.auth,
            )
            assert reply.status_code == 202, reply.text
            job: str = reply.json()["job_id"]
            return job

        async def verdict(job: str) -> str | None:
            reply = await ingest.get(
                f"/api/v1/attempt/{person.attempt_id}/code/result/{job}", headers=person.auth
            )
            return str(reply.json()["verdict"]) if reply.status_code == 200 else None

        async def wait_for(jobs: list[str], seconds: float) -> dict[str, str | None]:
            verdicts: dict[str, str | None] = {}
            for _ in range(int(seconds * 4)):
                verdicts = {job: await verdict(job) for job in jobs}
                if all(verdicts.values()):
                    break
                await asyncio.sleep(0.25)
            return verdicts

        warm_up = await execute("print(3)\n")  # the worker is up and runs code
        assert (await wait_for([warm_up], 120))[warm_up] == "AC"
        slow = await execute("import time\ntime.sleep(20)\nprint(3)\n")
        fast = [await execute("print(3)\n") for _ in range(4)]
        assert set((await wait_for(fast, 60)).values()) == {"AC"}, "fast runs waited"
        assert await verdict(slow) is None

        topic = CODE_RUNS.name(settings.topic_prefix)
        partition, slow_offset = await _offset_of(settings, topic, slow)
        await asyncio.sleep(3)  # commits run every second
        group = f"{settings.topic_prefix}streams"
        assert await _committed(settings, group, topic, partition) <= slow_offset

        roles.kill("streams")  # while the slow run is still in flight
        roles.start("streams")
        verdicts = await wait_for([slow, *fast], 180)
        assert verdicts[slow] == "AC", "the slow run was committed but never processed"
