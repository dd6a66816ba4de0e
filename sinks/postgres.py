"""The Postgres sink: attempts, saves, grades and standings as idempotent upserts.

Every statement is keyed by ids and guarded by the record's own time, so a batch
written twice, or a topic replayed from offset 0, leaves the tables as they were.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from avro_schemas.records import Record
from avro_schemas.topics import (
    ATTEMPT_EVENTS,
    CODE_RESULTS,
    GRADING_RESULTS,
    LEADERBOARD_UPDATES,
    PROCTORING_FLAGS,
)
from sinks.consumer import SinkRecord
from streams.rules.identity import email_identity

TOPICS = (ATTEMPT_EVENTS, GRADING_RESULTS, LEADERBOARD_UPDATES, CODE_RESULTS, PROCTORING_FLAGS)
PARTICIPANT_NAMESPACE = uuid.UUID("2c7e4b8a-1f3d-4e6a-9b5c-7d8e9f0a1b2c")


def participant_id_for(email: str) -> str:
    """One participant per email address, whatever its case."""
    return str(uuid.uuid5(PARTICIPANT_NAMESPACE, email_identity(email)))


INSERT_PARTICIPANT = """
INSERT INTO participants (id, email, name) VALUES (%(participant_id)s, %(email)s, %(name)s)
ON CONFLICT (id) DO NOTHING
"""

INSERT_STARTED_ATTEMPT = """
INSERT INTO attempts (id, contest_id, participant_id, participant_email, participant_name,
                      started_at, status)
VALUES (%(attempt_id)s, %(contest_id)s, %(participant_id)s, %(email)s, %(name)s,
        %(started_at)s, 'active')
ON CONFLICT (id) DO NOTHING
"""

UPSERT_SCORED_ATTEMPT = """
INSERT INTO attempts (id, contest_id, participant_id, participant_email, participant_name,
                      started_at, deadline, finished_at, status, total_score, max_score,
                      score_changed_at, counted_saves, late_saves, grader_version, graded_at)
VALUES (%(attempt_id)s, %(contest_id)s, %(participant_id)s, %(participant_email)s,
        %(participant_name)s, %(started_at)s, %(deadline)s, %(finished_at)s, %(status)s,
        %(total_score)s, %(max_score)s, %(score_changed_at)s, %(counted_saves)s,
        %(late_saves)s, %(grader_version)s, %(graded_at)s)
ON CONFLICT (id) DO UPDATE SET
    deadline = excluded.deadline, finished_at = excluded.finished_at,
    status = excluded.status, total_score = excluded.total_score,
    max_score = excluded.max_score, score_changed_at = excluded.score_changed_at,
    counted_saves = excluded.counted_saves, late_saves = excluded.late_saves,
    grader_version = excluded.grader_version, graded_at = excluded.graded_at
WHERE attempts.graded_at IS NULL OR attempts.graded_at <= excluded.graded_at
"""

INSERT_ANSWER_SAVE = """
INSERT INTO answer_saves (event_id, attempt_id, contest_id, question_id, client_seq, status,
                          selected_options, text, language, server_ts)
VALUES (%(event_id)s, %(attempt_id)s, %(contest_id)s, %(question_id)s, %(client_seq)s,
        %(status)s, %(selected_options)s, %(text)s, %(language)s, %(server_ts)s)
ON CONFLICT (event_id) DO NOTHING
"""

UPSERT_RESPONSE = """
INSERT INTO responses (attempt_id, question_id, contest_id, verdict, score, max_score,
                       client_seq, selected_options, text, saved_at, grader_version,
                       graded_at, grading_event_id)
VALUES (%(attempt_id)s, %(question_id)s, %(contest_id)s, %(verdict)s, %(score)s,
        %(max_score)s, %(client_seq)s, %(selected_options)s, %(text)s, %(saved_at)s,
        %(grader_version)s, %(graded_at)s, %(event_id)s)
ON CONFLICT (attempt_id, question_id) DO UPDATE SET
    verdict = excluded.verdict, score = excluded.score, max_score = excluded.max_score,
    client_seq = excluded.client_seq, selected_options = excluded.selected_options,
    text = excluded.text, saved_at = excluded.saved_at,
    grader_version = excluded.grader_version, graded_at = excluded.graded_at,
    grading_event_id = excluded.grading_event_id
WHERE responses.graded_at <= excluded.graded_at
"""

INSERT_GRADING_RESULT = """
INSERT INTO grading_results (event_id, attempt_id, question_id, verdict, score, max_score,
                             grader_version, graded_at)
VALUES (%(event_id)s, %(attempt_id)s, %(question_id)s, %(verdict)s, %(score)s,
        %(max_score)s, %(grader_version)s, %(graded_at)s)
ON CONFLICT (event_id) DO NOTHING
"""

UPSERT_LEADERBOARD = """
INSERT INTO leaderboard (contest_id, attempt_id, participant_name, total_score,
                         score_changed_at, started_at, invalidated, updated_at)
VALUES (%(contest_id)s, %(attempt_id)s, %(participant_name)s, %(total_score)s,
        %(score_changed_at)s, %(started_at)s, %(invalidated)s, %(updated_at)s)
ON CONFLICT (contest_id, attempt_id) DO UPDATE SET
    participant_name = excluded.participant_name, total_score = excluded.total_score,
    score_changed_at = excluded.score_changed_at, started_at = excluded.started_at,
    invalidated = excluded.invalidated, updated_at = excluded.updated_at
WHERE leaderboard.updated_at <= excluded.updated_at
"""


INSERT_CODE_EXECUTION = """
INSERT INTO code_executions (event_id, attempt_id, contest_id, question_id, purpose,
                             answer_event_id, language, verdict, score, max_score,
                             compile_output, tests, runner, grader_version, executed_at)
VALUES (%(event_id)s, %(attempt_id)s, %(contest_id)s, %(question_id)s, %(purpose)s,
        %(answer_event_id)s, %(language)s, %(verdict)s, %(score)s, %(max_score)s,
        %(compile_output)s, %(tests)s, %(runner)s, %(grader_version)s, %(server_ts)s)
ON CONFLICT (event_id) DO NOTHING
"""


UPSERT_PROCTORING = """
INSERT INTO proctoring (attempt_id, contest_id, connection, risk_score, reasons, blur_count,
                        blurred_seconds, disconnections, disconnected_seconds, ips,
                        user_agents, last_beat_at, updated_at)
VALUES (%(attempt_id)s, %(contest_id)s, %(connection)s, %(risk_score)s, %(reasons)s,
        %(blur_count)s, %(blurred_seconds)s, %(disconnections)s, %(disconnected_seconds)s,
        %(ips)s, %(user_agents)s, %(last_beat_at)s, %(server_ts)s)
ON CONFLICT (attempt_id) DO UPDATE SET
    connection = excluded.connection, risk_score = excluded.risk_score,
    reasons = excluded.reasons, blur_count = excluded.blur_count,
    blurred_seconds = excluded.blurred_seconds, disconnections = excluded.disconnections,
    disconnected_seconds = excluded.disconnected_seconds, ips = excluded.ips,
    user_agents = excluded.user_agents, last_beat_at = excluded.last_beat_at,
    updated_at = excluded.updated_at
WHERE proctoring.updated_at <= excluded.updated_at
"""


def _test_rows(tests: list[dict[str, Any]]) -> Jsonb:
    """Per-test verdict, time and memory; output as text only as far as it decodes."""
    return Jsonb(
        [
            {
                "test_id": t["test_id"],
                "verdict": t["verdict"],
                "time_ms": t["time_ms"],
                "memory_kb": t["memory_kb"],
                "stdout_bytes": len(t["stdout"]),
                "stderr": t["stderr"].decode("utf-8", "replace")[:4000],
            }
            for t in tests
        ]
    )


def _json_or_none(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def statements_for(record: SinkRecord) -> list[tuple[str, dict[str, Any]]]:
    """The upserts one record turns into (none for records this sink does not keep)."""
    v = record.value
    if record.name == Record.ATTEMPT_STARTED:
        person = {
            "participant_id": participant_id_for(v["participant_email"]),
            "email": v["participant_email"],
            "name": v["participant_name"],
        }
        attempt = {
            **person,
            "attempt_id": v["attempt_id"],
            "contest_id": v["contest_id"],
            "started_at": v["server_ts"],
        }
        return [(INSERT_PARTICIPANT, person), (INSERT_STARTED_ATTEMPT, attempt)]
    if record.name == Record.ATTEMPT_SCORED:
        person = {
            "participant_id": participant_id_for(v["participant_email"]),
            "email": v["participant_email"],
            "name": v["participant_name"],
        }
        return [
            (INSERT_PARTICIPANT, person),
            (UPSERT_SCORED_ATTEMPT, {**v, "participant_id": person["participant_id"]}),
        ]
    if record.name == Record.ANSWER_RECORDED:
        return [
            (INSERT_ANSWER_SAVE, {**v, "selected_options": _json_or_none(v["selected_options"])})
        ]
    if record.name == Record.RESPONSE_GRADED:
        row = {**v, "selected_options": _json_or_none(v["selected_options"])}
        return [(UPSERT_RESPONSE, row), (INSERT_GRADING_RESULT, row)]
    if record.name == Record.LEADERBOARD_UPDATE:
        return [(UPSERT_LEADERBOARD, v)]
    if record.name == Record.PROCTORING_FLAG:
        row = {**v, **{k: Jsonb(v[k]) for k in ("reasons", "ips", "user_agents")}}
        return [(UPSERT_PROCTORING, row)]
    if record.name == Record.CODE_EXECUTED:
        return [(INSERT_CODE_EXECUTION, {**v, "tests": _test_rows(v["tests"])})]
    return []


class PostgresWriter:
    """Writes a batch in one transaction, statements grouped so each runs as one
    pipelined executemany."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def write(self, records: Sequence[SinkRecord]) -> None:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            for sql, params in statements_for(record):
                grouped[sql].append(params)
        if not grouped:
            return
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            for sql, rows in grouped.items():
                await cur.executemany(sql, rows)

    def is_transient(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.OperationalError | PoolTimeout | OSError)
