"""Analytics over ClickHouse: what the data teams' dashboards read, served to admins.

The ClickHouse client is the one the process's ClickHouse sink uses (embedded chDB
opens its data folder from one process only), set on `app.state.clickhouse` by the
role runner; a process without it answers 503.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from api.deps import require_admin
from api.routing import SlashTolerantRouter
from sinks.clickhouse import ClickHouse

router = SlashTolerantRouter(
    prefix="/admin/analytics", tags=["analytics"], dependencies=[Depends(require_admin)]
)


def get_clickhouse(request: Request) -> ClickHouse:
    clickhouse: ClickHouse | None = getattr(request.app.state, "clickhouse", None)
    if clickhouse is None:
        raise HTTPException(503, "analytics are not served by this process (no ClickHouse client)")
    return clickhouse


ClickHouseDep = Annotated[ClickHouse, Depends(get_clickhouse)]


class EventCounts(BaseModel):
    """Distinct events stored for a contest, by record."""

    contest_id: uuid.UUID
    by_record: dict[str, int]
    distinct_events: int


class ScoreBucket(BaseModel):
    score_from: float
    attempts: int


class QuestionDifficulty(BaseModel):
    question_id: str
    responses: int
    correct_rate: float
    mean_score_rate: float


@router.get("/contests/{contest_id}/events/")
async def contest_events(contest_id: uuid.UUID, clickhouse: ClickHouseDep) -> EventCounts:
    """Distinct events per record kind (replays and duplicates counted once)."""
    rows = await clickhouse.query_rows(
        "SELECT record, uniqExact(event_id) FROM events WHERE contest_id = {c:String} "
        "GROUP BY record",
        {"c": str(contest_id)},
    )
    by_record = {str(record): int(count) for record, count in rows}
    return EventCounts(
        contest_id=contest_id, by_record=by_record, distinct_events=sum(by_record.values())
    )


@router.get("/contests/{contest_id}/score-distribution/")
async def score_distribution(
    contest_id: uuid.UUID, clickhouse: ClickHouseDep, buckets: int = 10
) -> list[ScoreBucket]:
    """Finished attempts per score band (latest grading of each attempt)."""
    buckets = max(1, min(buckets, 100))
    rows: list[Any] = await clickhouse.query_rows(
        "SELECT floor(total_score / max_score * {b:UInt32}) AS band, count() "
        "FROM attempt_scores FINAL WHERE contest_id = {c:String} AND max_score > 0 "
        "AND status != 'invalidated' GROUP BY band ORDER BY band",
        {"c": str(contest_id), "b": buckets},
    )
    return [
        ScoreBucket(score_from=min(float(band), buckets - 1) / buckets, attempts=int(n))
        for band, n in rows
    ]


@router.get("/contests/{contest_id}/question-difficulty/")
async def question_difficulty(
    contest_id: uuid.UUID, clickhouse: ClickHouseDep
) -> list[QuestionDifficulty]:
    """Per question: how many answered, the share fully correct, the mean score share."""
    rows: list[Any] = await clickhouse.query_rows(
        "SELECT question_id, count(), avg(verdict = 'correct'), avg(score / max_score) "
        "FROM responses FINAL WHERE contest_id = {c:String} AND verdict != 'unanswered' "
        "GROUP BY question_id ORDER BY avg(score / max_score)",
        {"c": str(contest_id)},
    )
    return [
        QuestionDifficulty(
            question_id=str(q), responses=int(n), correct_rate=float(c), mean_score_rate=float(m)
        )
        for q, n, c, m in rows
    ]
