"""`elevate demo`: a sample contest through the whole pipeline, ending in a summary.

It sets up and starts the services, runs every role, publishes the sample contest
through the admin API, drives simulated candidates over HTTP, waits until every
accepted event has landed, and checks the stored scores against an independent
recomputation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import psycopg

from elevate import services
from elevate.demo.candidates import Behaviour, Candidate, CandidateLog, DemoAnswers
from elevate.demo.oracle import expected_total, keys_from
from elevate.settings import Settings

log = logging.getLogger("elevate.demo")

DEMO_GRACE_SECONDS = 5
LANDING_TIMEOUT_SECONDS = 120.0
CANDIDATE_RECORDS = ("AttemptStarted", "AnswerSaved", "AttemptSubmitted", "Heartbeat")
KIND_TO_RECORD = {
    "start": "AttemptStarted",
    "save": "AnswerSaved",
    "submit": "AttemptSubmitted",
    "heartbeat": "Heartbeat",
}


def acknowledged_events(log: CandidateLog) -> int:
    """Events the server took from one candidate; refused requests were never events."""
    return sum(n for kind, n in log.accepted.items() if kind in KIND_TO_RECORD)


def load_sample_contest() -> dict[str, Any]:
    text = (resources.files("elevate.demo") / "sample_contest.json").read_text(encoding="utf-8")
    contest: dict[str, Any] = json.loads(text)
    return contest


def demo_answers(sample: dict[str, Any]) -> DemoAnswers:
    answers = sample["demo_answers"]
    return DemoAnswers(tuple(answers["subjective"]), tuple(answers["coding"]))


@dataclass
class Pipeline:
    """The role processes the demo started, and where they log."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_pipeline(settings: Settings, env: dict[str, str]) -> Pipeline:
    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "pipeline.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "elevate", "run", "all"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Pipeline(process, log_path)


async def wait_ready(client: httpx.AsyncClient, url: str, pipeline: Pipeline) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if pipeline.process.poll() is not None:
            raise RuntimeError(f"the pipeline stopped; see {pipeline.log_path}")
        try:
            if (await client.get(url, timeout=2)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} not ready after 120 s; see {pipeline.log_path}")


class AdminClient:
    """The admin API, as the demo uses it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def login(self, username: str, password: str) -> None:
        reply = await self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        reply.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = await self.client.request(method, path, **kwargs)
        if reply.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {reply.status_code} {reply.text[:500]}")
        return reply.json()

    async def publish_sample(self, duration_seconds: int) -> dict[str, Any]:
        sample = load_sample_contest()
        now = datetime.now(UTC)
        contest = await self.call(
            "POST",
            "/api/v1/admin/contests/",
            json={
                "name": f"{sample['name']} ({now:%Y-%m-%d %H:%M:%S} UTC)",
                "description": sample["description"],
                "start_at": (now - timedelta(minutes=1)).isoformat(),
                "end_at": (now + timedelta(seconds=duration_seconds + 600)).isoformat(),
                "duration_seconds": duration_seconds,
            },
        )
        for position, question in enumerate(sample["questions"]):
            await self.call(
                "POST",
                "/api/v1/admin/questions/",
                json={**question, "contest_id": contest["id"], "position": position},
            )
        await self.call("POST", f"/api/v1/admin/contests/{contest['id']}/publish/")
        detail: dict[str, Any] = await self.call("GET", f"/api/v1/admin/contests/{contest['id']}/")
        return detail


async def wait_until_known(client: httpx.AsyncClient, contest_id: str) -> None:
    """Ingest learns a published contest from Kafka within moments; wait for it."""
    for _ in range(100):
        probe = await client.post(f"/api/v1/contest/{contest_id}/start", content=b"{")
        if probe.status_code != 404:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("ingest never learned the published contest")


def postgres_counts(dsn: str, contest_id: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:

        def one(sql: str) -> Any:
            row = conn.execute(sql, (contest_id,)).fetchone()
            return row[0] if row else None

        return {
            "attempts_started": one("SELECT count(*) FROM attempts WHERE contest_id = %s"),
            "attempts_finished": one(
                "SELECT count(*) FROM attempts WHERE contest_id = %s AND finished_at IS NOT NULL"
            ),
            "attempts_submitted": one(
                "SELECT count(*) FROM attempts WHERE contest_id = %s AND status = 'submitted'"
            ),
            "attempts_expired": one(
                "SELECT count(*) FROM attempts WHERE contest_id = %s AND status = 'expired'"
            ),
            "responses": one("SELECT count(*) FROM responses WHERE contest_id = %s"),
            "code_awaiting_run": one(
                "SELECT count(*) FROM responses WHERE contest_id = %s"
                " AND verdict = 'pending_execution'"
            ),
            "code_graded": one(
                "SELECT count(*) FROM responses r JOIN questions q ON q.id = r.question_id"
                " WHERE r.contest_id = %s AND q.kind = 'coding'"
                " AND r.text IS NOT NULL AND r.verdict <> 'pending_execution'"
            ),
            "awaiting_manual_grading": one(
                "SELECT count(*) FROM responses WHERE contest_id = %s"
                " AND verdict = 'pending_manual'"
            ),
            "saves": one("SELECT count(*) FROM answer_saves WHERE contest_id = %s"),
            "late_saves": one(
                "SELECT count(*) FROM answer_saves WHERE contest_id = %s AND status = 'late'"
            ),
            "leaderboard": one(
                "SELECT count(*) FROM leaderboard WHERE contest_id = %s AND NOT invalidated"
            ),
            "save_ids": {
                str(r[0])
                for r in conn.execute(
                    "SELECT event_id FROM answer_saves WHERE contest_id = %s", (contest_id,)
                )
            },
            "scores": {
                str(r[0]): r[1]
                for r in conn.execute(
                    "SELECT id, total_score FROM attempts WHERE contest_id = %s", (contest_id,)
                )
            },
        }


async def clickhouse_counts(admin: AdminClient, contest_id: str) -> dict[str, int]:
    summary = await admin.call("GET", f"/api/v1/admin/analytics/contests/{contest_id}/events/")
    counts: dict[str, int] = summary["by_record"]
    return counts


def _print(line: str, quiet: bool) -> None:
    if not quiet:
        print(line, flush=True)


async def drive(
    settings: Settings, candidates: int, duration_seconds: int, quiet: bool, pipeline: Pipeline
) -> dict[str, Any]:
    ingest_url = f"http://{settings.ingest_host}:{settings.ingest_port}"
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with (
        httpx.AsyncClient(base_url=ingest_url, timeout=30, limits=limits) as ingest,
        httpx.AsyncClient(base_url=api_url, timeout=30) as api,
    ):
        await wait_ready(ingest, "/readyz", pipeline)
        await wait_ready(api, "/healthz", pipeline)
        admin = AdminClient(api)
        password = secrets.token_urlsafe(16)
        from api.admins import create_admin

        await asyncio.to_thread(
            create_admin, settings.postgres_dsn, "demo-admin", password, "admin"
        )
        await admin.login("demo-admin", password)
        contest = await admin.publish_sample(duration_seconds)
        contest_id = contest["id"]
        await wait_until_known(ingest, contest_id)
        _print(
            f"published {contest['name']!r}: {len(contest['questions'])} questions, "
            f"{duration_seconds}s per attempt, {DEMO_GRACE_SECONDS}s grace",
            quiet,
        )

        seed = int(time.time())
        sample = load_sample_contest()
        answers = demo_answers(sample)
        crowd = [
            Candidate(ingest, contest_id, n, DEMO_GRACE_SECONDS, seed, answers)
            for n in range(candidates)
        ]
        began = time.monotonic()
        tasks = [
            asyncio.create_task(c.run(start_delay=5.0 * n / max(1, candidates)))
            for n, c in enumerate(crowd)
        ]
        while not all(t.done() for t in tasks):
            await asyncio.sleep(5)
            accepted = sum(acknowledged_events(c.log) for c in crowd)
            finished = sum(t.done() for t in tasks)
            _print(
                f"  t+{time.monotonic() - began:4.0f}s  events accepted {accepted:6d}  "
                f"candidates done {finished}/{candidates}",
                quiet,
            )
        logs: list[CandidateLog] = [t.result() for t in tasks]
        drive_seconds = time.monotonic() - began

        accepted_by_record: dict[str, int] = {}
        for entry in logs:
            for kind, n in entry.accepted.items():
                record = KIND_TO_RECORD.get(kind)
                if record is None:  # refused requests (late submits) were never events
                    continue
                accepted_by_record[record] = accepted_by_record.get(record, 0) + n
        events_accepted = sum(accepted_by_record.values())
        accepted_save_ids_count = accepted_by_record.get("AnswerSaved", 0)
        started = [entry for entry in logs if entry.attempt_id]

        _print("waiting for every accepted event to land in Postgres and ClickHouse…", quiet)
        landing_began = time.monotonic()
        while True:
            pg = await asyncio.to_thread(postgres_counts, settings.postgres_dsn, contest_id)
            ch = await clickhouse_counts(admin, contest_id)
            landed = (
                pg["saves"] >= accepted_save_ids_count
                and pg["attempts_finished"] >= len(started)
                and pg["leaderboard"] >= len(started)
                and pg["code_awaiting_run"] == 0
                and all(ch.get(r, 0) >= n for r, n in accepted_by_record.items())
            )
            if landed or time.monotonic() - landing_began > LANDING_TIMEOUT_SECONDS:
                break
            await asyncio.sleep(1)
        landing_seconds = time.monotonic() - landing_began

        missing_in_clickhouse = sum(max(0, n - ch.get(r, 0)) for r, n in accepted_by_record.items())
        missing_in_postgres = max(0, accepted_save_ids_count - len(pg["save_ids"])) + max(
            0, len(started) - pg["attempts_started"]
        )
        keys = keys_from(contest["questions"])
        coding_scores = {a["source"]: float(a["score"]) for a in answers.coding}
        mismatches = [
            entry.email
            for entry in started
            if pg["scores"].get(entry.attempt_id) is None
            or abs(
                pg["scores"][entry.attempt_id]
                - expected_total(entry, keys, coding_scores, DEMO_GRACE_SECONDS)
            )
            > 1e-6
        ]
        board = await admin.call(
            "GET", f"/api/v1/admin/contests/{contest_id}/leaderboard/", params={"limit": 10}
        )
        rows = board["items"] if isinstance(board, dict) else board
        late_candidates = sum(1 for e in logs if e.behaviour is Behaviour.LATE)
        late_submits_refused = sum(e.accepted.get("submit_refused", 0) for e in logs)
        errors = [err for e in logs for err in e.errors]
        return {
            "contest_id": contest_id,
            "candidates": candidates,
            "candidates_late_by_design": late_candidates,
            "events_accepted": events_accepted,
            "events_accepted_by_kind": accepted_by_record,
            "attempts_submitted": pg["attempts_submitted"],
            "attempts_expired": pg["attempts_expired"],
            "responses_in_postgres": pg["responses"],
            "coding_answers_judged": pg["code_graded"],
            "coding_answers_awaiting_run": pg["code_awaiting_run"],
            "subjective_answers_awaiting_manual_grading": pg["awaiting_manual_grading"],
            "saves_in_postgres": pg["saves"],
            "events_in_clickhouse": sum(ch.get(r, 0) for r in CANDIDATE_RECORDS),
            "leaderboard_rows": pg["leaderboard"],
            "late_saves_not_counted": pg["late_saves"],
            "late_submits_refused": late_submits_refused,
            "lost": missing_in_clickhouse + missing_in_postgres,
            "scores_match": not mismatches,
            "score_mismatches": mismatches[:10],
            "client_errors": errors[:10],
            "drive_seconds": round(drive_seconds, 1),
            "landing_seconds": round(landing_seconds, 1),
            "top10": rows[:10],
        }


def _print_summary(summary: dict[str, Any]) -> None:
    print("\nTop 10")
    print(f"{'rank':>4}  {'candidate':<18} {'score':>7}  score last changed")
    for row in summary["top10"]:
        print(
            f"{row['rank']:>4}  {row['participant_name']:<18} {row['total_score']:>7.2f}  "
            f"{row['score_changed_at']}"
        )
    print(
        f"\n{summary['candidates']} candidates, {summary['events_accepted']} events accepted; "
        f"{summary['attempts_submitted']} submitted, {summary['attempts_expired']} expired; "
        f"{summary['late_saves_not_counted']} late saves kept but not counted; "
        f"{summary['coding_answers_judged']} coding answers judged on the hidden tests, "
        f"{summary['subjective_answers_awaiting_manual_grading']} written answers await a "
        f"grader; lost {summary['lost']}; scores match: {summary['scores_match']}"
    )


def run_demo(candidates: int, duration_seconds: int, as_json: bool) -> int:
    env = {**os.environ, "GRACE_SECONDS": str(DEMO_GRACE_SECONDS)}
    os.environ["GRACE_SECONDS"] = str(DEMO_GRACE_SECONDS)
    settings = Settings()
    services.ensure_prerequisites(settings)
    services.up(settings)
    pipeline = start_pipeline(settings, env)
    _print(f"pipeline starting (logs: {pipeline.log_path})", as_json)
    try:
        summary = asyncio.run(drive(settings, candidates, duration_seconds, as_json, pipeline))
    finally:
        pipeline.stop()
    compact = {k: v for k, v in summary.items() if k != "top10"}
    if not as_json:
        _print_summary(summary)
    print(json.dumps(compact if not as_json else summary, default=str))
    complete = (
        summary["leaderboard_rows"] == summary["attempts_submitted"] + summary["attempts_expired"]
    )
    judged = summary["coding_answers_awaiting_run"] == 0
    return 0 if summary["lost"] == 0 and summary["scores_match"] and complete and judged else 1
