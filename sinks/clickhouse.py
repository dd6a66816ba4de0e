"""The ClickHouse sink: every event and every result, for analytics and dashboards.

Tables are ReplacingMergeTree on the event key, so a replayed batch collapses into the
rows already there; queries that must be exact read with FINAL or count distinct keys.
Client calls block (the embedded chDB engine runs in-process), so they run in a thread,
one at a time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from avro_schemas.records import Record
from avro_schemas.topics import (
    ATTEMPT_EVENTS,
    CODE_RESULTS,
    CODE_RUNS,
    GRADING_RESULTS,
    HEARTBEATS,
    LEADERBOARD_UPDATES,
    PROCTORING_FLAGS,
)
from sinks.consumer import SinkRecord

TOPICS = (
    ATTEMPT_EVENTS,
    HEARTBEATS,
    GRADING_RESULTS,
    LEADERBOARD_UPDATES,
    CODE_RUNS,
    CODE_RESULTS,
    PROCTORING_FLAGS,
)

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS events (
        event_id    String,
        record      LowCardinality(String),
        topic       LowCardinality(String),
        partition   UInt16,
        offset      UInt64,
        contest_id  String,
        attempt_id  String,
        occurred_at DateTime64(3, 'UTC'),
        client_ts   Nullable(DateTime64(3, 'UTC')),
        payload     String
    ) ENGINE = ReplacingMergeTree
    ORDER BY (contest_id, record, event_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS responses (
        contest_id     String,
        attempt_id     String,
        question_id    String,
        verdict        LowCardinality(String),
        score          Float64,
        max_score      Float64,
        saved_at       Nullable(DateTime64(3, 'UTC')),
        grader_version LowCardinality(String),
        graded_at      DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(graded_at)
    ORDER BY (contest_id, attempt_id, question_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS attempt_scores (
        contest_id       String,
        attempt_id       String,
        status           LowCardinality(String),
        started_at       DateTime64(3, 'UTC'),
        finished_at      DateTime64(3, 'UTC'),
        total_score      Float64,
        max_score        Float64,
        counted_saves    UInt32,
        late_saves       UInt32,
        graded_at        DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(graded_at)
    ORDER BY (contest_id, attempt_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS proctoring_flags (
        contest_id           String,
        attempt_id           String,
        connection           LowCardinality(String),
        risk_score           UInt8,
        reasons              Array(String),
        blur_count           UInt32,
        disconnections       UInt32,
        server_ts            DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(server_ts)
    ORDER BY (contest_id, attempt_id)
    """,
)

EVENT_COLUMNS = (
    "event_id",
    "record",
    "topic",
    "partition",
    "offset",
    "contest_id",
    "attempt_id",
    "occurred_at",
    "client_ts",
    "payload",
)
RESPONSE_COLUMNS = (
    "contest_id",
    "attempt_id",
    "question_id",
    "verdict",
    "score",
    "max_score",
    "saved_at",
    "grader_version",
    "graded_at",
)
SCORE_COLUMNS = (
    "contest_id",
    "attempt_id",
    "status",
    "started_at",
    "finished_at",
    "total_score",
    "max_score",
    "counted_saves",
    "late_saves",
    "graded_at",
)


def _occurred_at(value: dict[str, Any]) -> datetime:
    for field in ("server_ts", "graded_at", "updated_at"):
        if isinstance(value.get(field), datetime):
            moment: datetime = value[field]
            return moment
    raise ValueError("record has no time of its own")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):  # program input and output: kept exactly, as base64
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__}")


def rows_for(record: SinkRecord) -> dict[str, list[list[Any]]]:
    """The table rows one record adds: always its raw event, and typed result rows."""
    v = record.value
    rows: dict[str, list[list[Any]]] = {
        "events": [
            [
                v["event_id"],
                record.name.rsplit(".", 1)[-1],
                record.topic,
                record.partition,
                record.offset,
                v.get("contest_id", ""),
                v.get("attempt_id", ""),
                _occurred_at(v),
                v.get("client_ts"),
                json.dumps(v, default=_json_default, ensure_ascii=False),
            ]
        ]
    }
    if record.name == Record.RESPONSE_GRADED:
        rows["responses"] = [[v[c] for c in RESPONSE_COLUMNS]]
    elif record.name == Record.ATTEMPT_SCORED:
        rows["attempt_scores"] = [[v[c] for c in SCORE_COLUMNS]]
    elif record.name == Record.PROCTORING_FLAG:
        rows["proctoring_flags"] = [[v[c] for c in FLAG_COLUMNS]]
    return rows


FLAG_COLUMNS = (
    "contest_id",
    "attempt_id",
    "connection",
    "risk_score",
    "reasons",
    "blur_count",
    "disconnections",
    "server_ts",
)
COLUMNS = {
    "events": EVENT_COLUMNS,
    "responses": RESPONSE_COLUMNS,
    "attempt_scores": SCORE_COLUMNS,
    "proctoring_flags": FLAG_COLUMNS,
}


class ClickHouse:
    """One clickhouse-connect client shared by the sink and analytics queries."""

    def __init__(self, dsn: str) -> None:
        self._client: Client = clickhouse_connect.get_client(dsn=dsn)
        self._lock = threading.Lock()
        self.run_sync(self._create_schema)

    def _create_schema(self, client: Client) -> None:
        for statement in SCHEMA:
            client.command(statement)

    def run_sync(self, work: Any) -> Any:
        with self._lock:
            return work(self._client)

    async def run(self, work: Any) -> Any:
        """Run `work(client)` in a thread, never two at once."""
        return await asyncio.to_thread(self.run_sync, work)

    async def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[Any]:
        result = await self.run(lambda c: c.query(sql, parameters=parameters or {}))
        return list(result.result_rows)

    def close(self) -> None:
        with self._lock:
            self._client.close()


class ClickHouseWriter:
    """Batched inserts, one per table per batch."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse = clickhouse

    async def write(self, records: Sequence[SinkRecord]) -> None:
        tables: dict[str, list[list[Any]]] = {}
        for record in records:
            for table, rows in rows_for(record).items():
                tables.setdefault(table, []).extend(rows)

        def insert(client: Client) -> None:
            for table, rows in tables.items():
                client.insert(table, rows, column_names=list(COLUMNS[table]))

        await self.clickhouse.run(insert)

    def is_transient(self, exc: Exception) -> bool:
        return isinstance(exc, OperationalError | OSError)
