"""The data team's dashboard queries (deploy/grafana/queries/*.sql), run on the real
ClickHouse engine (embedded chDB) over tables the ClickHouse sink creates and fills.

The rows are a small contest written through the sink's own `ClickHouseWriter`, twice,
as a Kafka redelivery would; every expected figure is recomputed here from the same
records, so a query that double-counts a replayed batch or leaks another contest fails.

chDB opens one data folder per process, and a process that has opened one cannot open
another: the queries run in a child process of their own, on a fresh folder.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

import pytest

from avro_schemas.records import Record
from avro_schemas.topics import ATTEMPT_EVENTS, GRADING_RESULTS, HEARTBEATS, PROCTORING_FLAGS
from elevate.settings import PROJECT_ROOT
from sinks.consumer import SinkRecord

QUERIES = PROJECT_ROOT / "deploy" / "grafana" / "queries"
CONTEST = "c0c0c0c0-0000-4000-8000-000000000001"
OTHER_CONTEST = "c0c0c0c0-0000-4000-8000-000000000002"
START = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
QUESTIONS = ("q1", "q2", "q3", "q4")
MARKS = 4.0
PREFIX = "elevate."

# One row per attempt of CONTEST: how it ended, its verdict per question (c correct,
# p partial, w wrong, u unanswered, m waiting for manual grading), tab switches and
# whether it was seen from a second IP address.
ATTEMPTS = (
    ("submitted", "cccc", 0, False),
    ("submitted", "cccw", 2, False),
    ("submitted", "ccwc", 0, False),
    ("submitted", "ccww", 0, True),
    ("submitted", "cwwu", 5, False),
    ("submitted", "wwwu", 0, False),
    ("submitted", "cccp", 1, False),
    ("expired", "cpwu", 0, False),
    ("expired", "cwum", 0, False),
    ("invalidated", "ccpc", 7, True),
)
VERDICTS = {"c": "correct", "p": "partial", "w": "wrong", "u": "unanswered", "m": "pending_manual"}
SCORES = {"c": MARKS, "p": MARKS / 2, "w": 0.0, "u": 0.0, "m": 0.0}


@dataclass(frozen=True)
class Attempt:
    attempt_id: str
    contest_id: str
    status: str
    verdicts: str
    blurs: int
    second_ip: bool
    started_at: datetime
    finished_at: datetime

    @property
    def total(self) -> float:
        return sum(SCORES[v] for v in self.verdicts)

    @property
    def risk(self) -> int:
        """The risk score of the attempt's last ProctoringFlag."""
        return min(100, 10 * self.blurs + 40 * self.second_ip)


def attempts() -> list[Attempt]:
    made = [
        Attempt(
            attempt_id=f"a0000000-0000-4000-8000-{n:012d}",
            contest_id=CONTEST,
            status=status,
            verdicts=verdicts,
            blurs=blurs,
            second_ip=second_ip,
            started_at=START + timedelta(minutes=n),
            finished_at=START + timedelta(minutes=30 + 3 * n),
        )
        for n, (status, verdicts, blurs, second_ip) in enumerate(ATTEMPTS)
    ]
    # Another contest's attempt, which no query for CONTEST may count.
    made.append(
        Attempt(
            "b0000000-0000-4000-8000-000000000000",
            OTHER_CONTEST,
            "submitted",
            "cccc",
            3,
            True,
            START + timedelta(hours=2),
            START + timedelta(hours=3),
        )
    )
    return made


def _record(name: Record, topic: str, offset: int, value: dict[str, Any]) -> SinkRecord:
    return SinkRecord(name, value, topic, 0, offset, value["attempt_id"].encode(), None)


def records_of(attempt: Attempt) -> list[SinkRecord]:
    """What the pipeline writes for one attempt, as the sink receives it."""
    ids = (uuid.uuid5(uuid.NAMESPACE_URL, f"{attempt.attempt_id}/{n}") for n in range(10_000))
    attempt_topic = ATTEMPT_EVENTS.name(PREFIX)
    beats_topic = HEARTBEATS.name(PREFIX)
    results_topic = GRADING_RESULTS.name(PREFIX)
    base = {"attempt_id": attempt.attempt_id, "contest_id": attempt.contest_id}
    out = [
        _record(
            Record.ATTEMPT_STARTED,
            attempt_topic,
            0,
            {
                **base,
                "event_id": str(next(ids)),
                "server_ts": attempt.started_at,
                "client_ts": None,
                "participant_email": "x@example.com",
                "participant_name": "X",
            },
        )
    ]
    for seq, question in enumerate(QUESTIONS, start=1):
        out.append(
            _record(
                Record.ANSWER_SAVED,
                attempt_topic,
                seq,
                {
                    **base,
                    "event_id": str(next(ids)),
                    "question_id": question,
                    "client_seq": seq,
                    "server_ts": attempt.started_at + timedelta(minutes=seq),
                    "client_ts": attempt.started_at + timedelta(minutes=seq, seconds=-2),
                    "selected_options": [0],
                    "text": None,
                    "language": None,
                },
            )
        )
    beats: list[tuple[str, str]] = [("heartbeat", "10.0.0.1")] * 3
    beats += [("blur", "10.0.0.1"), ("focus", "10.0.0.1")] * attempt.blurs
    if attempt.second_ip:
        beats.append(("heartbeat", "10.9.9.9"))
    for n, (kind, ip) in enumerate(beats):
        out.append(
            _record(
                Record.HEARTBEAT,
                beats_topic,
                n,
                {
                    **base,
                    "event_id": str(next(ids)),
                    "kind": kind,
                    "ip": ip,
                    "user_agent": "test",
                    "server_ts": attempt.started_at + timedelta(seconds=20 * (n + 1)),
                    "client_ts": None,
                },
            )
        )
    finish = {
        "submitted": Record.ATTEMPT_SUBMITTED,
        "expired": Record.ATTEMPT_EXPIRED,
        "invalidated": Record.ATTEMPT_INVALIDATED,
    }[attempt.status]
    out.append(
        _record(
            finish,
            attempt_topic,
            10,
            {
                **base,
                "event_id": str(next(ids)),
                "server_ts": attempt.finished_at,
                "client_ts": None,
            },
        )
    )
    # The stream's proctoring picture: an early flag, then the final one, which
    # replaces it (ReplacingMergeTree on server_ts).
    for n, (risk, at) in enumerate(
        (
            (attempt.risk // 2, attempt.started_at + timedelta(minutes=1)),
            (attempt.risk, attempt.finished_at),
        )
    ):
        out.append(
            _record(
                Record.PROCTORING_FLAG,
                PROCTORING_FLAGS.name(PREFIX),
                n,
                {
                    **base,
                    "event_id": str(next(ids)),
                    "connection": "disconnected" if attempt.status == "expired" else "active",
                    "risk_score": risk,
                    "reasons": (["tab switches"] if attempt.blurs else [])
                    + (["several IP addresses"] if attempt.second_ip else []),
                    "blur_count": attempt.blurs,
                    "blurred_seconds": 4.0 * attempt.blurs,
                    "disconnections": 0,
                    "disconnected_seconds": 0.0,
                    "ips": ["10.0.0.1", "10.9.9.9"] if attempt.second_ip else ["10.0.0.1"],
                    "user_agents": ["test"],
                    "last_beat_at": at,
                    "server_ts": at,
                },
            )
        )
    graded_at = attempt.finished_at + timedelta(seconds=1)
    for n, (question, verdict) in enumerate(zip(QUESTIONS, attempt.verdicts, strict=True)):
        out.append(
            _record(
                Record.RESPONSE_GRADED,
                results_topic,
                n,
                {
                    **base,
                    "event_id": str(next(ids)),
                    "question_id": question,
                    "verdict": VERDICTS[verdict],
                    "score": SCORES[verdict],
                    "max_score": MARKS,
                    "client_seq": n + 1,
                    "selected_options": [0],
                    "text": None,
                    "saved_at": attempt.started_at + timedelta(minutes=n + 1),
                    "grader_version": "mcq-1",
                    "graded_at": graded_at,
                },
            )
        )
    out.append(
        _record(
            Record.ATTEMPT_SCORED,
            results_topic,
            10,
            {
                **base,
                "event_id": str(next(ids)),
                "participant_email": "x@example.com",
                "participant_name": "X",
                "status": attempt.status,
                "started_at": attempt.started_at,
                "deadline": attempt.started_at + timedelta(hours=1),
                "finished_at": attempt.finished_at,
                "total_score": attempt.total,
                "max_score": MARKS * len(QUESTIONS),
                "score_changed_at": attempt.finished_at,
                "counted_saves": len(QUESTIONS),
                "late_saves": 1 if attempt.status == "expired" else 0,
                "grader_version": "mcq-1",
                "graded_at": graded_at,
            },
        )
    )
    return out


WHOLE_RANGE = {"from": START, "to": START + timedelta(days=1)}
# Each query with the parameters it is run with; the key names the run.
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "contest_ids": ("contest_ids", {}),
    "contest_summary": ("contest_summary", {"contest_id": CONTEST}),
    "score_distribution": ("score_distribution", {"contest_id": CONTEST}),
    "question_difficulty": ("question_difficulty", {"contest_id": CONTEST}),
    "proctoring_flags": ("proctoring_flags", {"contest_id": CONTEST, **WHOLE_RANGE}),
    "proctoring_risk": ("proctoring_risk", {"contest_id": CONTEST}),
    "focus_changes_over_time": (
        "focus_changes_over_time",
        {"contest_id": CONTEST, "bucket_seconds": 60, **WHOLE_RANGE},
    ),
    "submissions_over_time": (
        "submissions_over_time",
        {"contest_id": CONTEST, "bucket_seconds": 600, **WHOLE_RANGE},
    ),
    # Only the attempts that finished in the first 40 minutes: the time range filters.
    "submissions_over_time, first 40 minutes": (
        "submissions_over_time",
        {
            "contest_id": CONTEST,
            "bucket_seconds": 600,
            "from": START,
            "to": START + timedelta(minutes=40),
        },
    ),
}


def run_queries(folder: str) -> dict[str, list[tuple[Any, ...]]]:
    """In a child process: the sink's tables, every record written twice, every run."""
    from sinks.clickhouse import ClickHouse, ClickHouseWriter

    clickhouse = ClickHouse(f"chdb://{folder}")
    try:
        writer = ClickHouseWriter(clickhouse)
        batch = [record for attempt in attempts() for record in records_of(attempt)]
        asyncio.run(writer.write(batch))
        asyncio.run(writer.write(batch))  # redelivered: must change no figure
        results = {}
        for run, (query, parameters) in RUNS.items():
            sql = (QUERIES / f"{query}.sql").read_text()
            rows = clickhouse.run_sync(lambda c: c.query(sql, parameters=parameters).result_rows)  # noqa: B023
            results[run] = [tuple(row) for row in rows]
        return results
    finally:
        clickhouse.close()


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    folder = tmp_path_factory.mktemp("chdb") / "clickhouse"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run_queries, str(folder)).result(timeout=600)


def _utc(moment: datetime) -> datetime:
    """chDB returns DateTime64(3, 'UTC') values as naive UTC datetimes."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ours() -> list[Attempt]:
    return [a for a in attempts() if a.contest_id == CONTEST]


def test_every_query_file_is_run() -> None:
    assert {query for query, _ in RUNS.values()} == {p.stem for p in QUERIES.glob("*.sql")}


def test_contest_ids_lists_contests_most_recent_first(results: dict[str, list[Any]]) -> None:
    assert results["contest_ids"] == [(OTHER_CONTEST,), (CONTEST,)]


def test_contest_summary(results: dict[str, list[Any]]) -> None:
    ours = _ours()
    counted = [a for a in ours if a.status != "invalidated"]
    by_status = Counter(a.status for a in ours)
    [(attempts_, submitted, expired, invalidated, mean_percent, late_saves)] = results[
        "contest_summary"
    ]
    assert (attempts_, submitted, expired, invalidated) == (
        len(ours),
        by_status["submitted"],
        by_status["expired"],
        by_status["invalidated"],
    )
    assert mean_percent == round(mean(a.total / (MARKS * len(QUESTIONS)) * 100 for a in counted), 1)
    assert late_saves == by_status["expired"]


def test_score_distribution_has_every_band_and_sums_to_the_attempts(
    results: dict[str, list[Any]],
) -> None:
    rows = results["score_distribution"]
    assert [label for label, _ in rows] == [f"{b * 10:02d}-{b * 10 + 10}%" for b in range(10)]
    counted = [a for a in _ours() if a.status != "invalidated"]
    assert sum(n for _, n in rows) == len(counted)
    expected = Counter(min(int(a.total / (MARKS * len(QUESTIONS)) * 10), 9) for a in counted)
    assert [n for _, n in rows] == [expected[b] for b in range(10)]


def test_question_difficulty(results: dict[str, list[Any]]) -> None:
    expected = {}
    for index, question in enumerate(QUESTIONS):
        answered = [a.verdicts[index] for a in _ours() if a.verdicts[index] not in "um"]
        expected[question] = (
            len(answered),
            round(mean(v == "c" for v in answered), 3),
            round(mean(SCORES[v] / MARKS for v in answered), 3),
        )
    rows = results["question_difficulty"]
    assert {q: tuple(rest) for q, *rest in rows} == expected
    rates = [(rate, ratio) for _, _, rate, ratio in rows]
    assert rates == sorted(rates), "the hardest question first"


def test_proctoring_flags(results: dict[str, list[Any]]) -> None:
    flagged = {a.attempt_id: a for a in _ours() if a.blurs or a.second_ip}
    rows = {row[0]: row for row in results["proctoring_flags"]}
    assert set(rows) == set(flagged)
    for attempt_id, (_, blurs, focuses, heartbeats, ips, last_seen) in rows.items():
        attempt = flagged[attempt_id]
        assert (blurs, focuses) == (attempt.blurs, attempt.blurs)
        assert heartbeats == 3 + attempt.second_ip
        assert ips == 1 + attempt.second_ip
        assert attempt.started_at < _utc(last_seen) < attempt.finished_at
    blur_counts = [row[1] for row in results["proctoring_flags"]]
    assert blur_counts == sorted(blur_counts, reverse=True)


def test_proctoring_risk_is_each_attempts_latest_flag(results: dict[str, list[Any]]) -> None:
    risky = sorted((a for a in _ours() if a.risk), key=lambda a: (-a.risk, a.attempt_id))
    rows = results["proctoring_risk"]
    assert [(row[0], row[1]) for row in rows] == [(a.attempt_id, a.risk) for a in risky]
    for (_, _, reasons, _, blurs, _, updated_at), attempt in zip(rows, risky, strict=True):
        assert ("tab switches" in reasons) == bool(attempt.blurs)
        assert ("several IP addresses" in reasons) == attempt.second_ip
        assert blurs == attempt.blurs
        assert _utc(updated_at) == attempt.finished_at


def test_focus_changes_over_time(results: dict[str, list[Any]]) -> None:
    rows = results["focus_changes_over_time"]
    assert sum(blurs for _, blurs, _ in rows) == sum(a.blurs for a in _ours())
    assert max(attempts_ for _, _, attempts_ in rows) >= 1
    times = [time for time, _, _ in rows]
    assert times == sorted(times)
    assert all(t.second == 0 for t in times), "one-minute buckets"


def test_submissions_over_time(results: dict[str, list[Any]]) -> None:
    rows = results["submissions_over_time"]
    by_status = Counter(a.status for a in _ours())
    assert sum(s for _, s, _ in rows) == by_status["submitted"]
    assert sum(e for _, _, e in rows) == by_status["expired"]
    assert all(t.minute % 10 == 0 and t.second == 0 for t, _, _ in rows)
    early = results["submissions_over_time, first 40 minutes"]
    cut = START + timedelta(minutes=40)
    expected = Counter(a.status for a in _ours() if a.finished_at < cut)
    assert sum(s for _, s, _ in early) == expected["submitted"]
    assert sum(e for _, _, e in early) == expected["expired"]
    assert 0 < sum(s + e for _, s, e in early) < sum(s + e for _, s, e in rows)


def test_queries_take_parameters_not_grafana_macros() -> None:
    for path in QUERIES.glob("*.sql"):
        assert "$" not in path.read_text(), f"{path.name}: Grafana macros belong in the dashboard"


def test_the_rows_are_demo_shaped() -> None:
    """The fixture writes what the sink would: every record decodes to rows of its
    tables, and payloads are JSON with the heartbeat kind the proctoring query reads."""
    from sinks.clickhouse import rows_for

    kinds: Counter[str] = Counter()
    for attempt in attempts():
        for record in records_of(attempt):
            rows = rows_for(record)
            if record.name == Record.HEARTBEAT:
                kinds[json.loads(rows["events"][0][-1])["kind"]] += 1
    assert set(kinds) == {"heartbeat", "blur", "focus"}
