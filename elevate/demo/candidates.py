"""Simulated candidates: each one starts, autosaves changing answers, heartbeats, and
submits (on time, inside the grace period, too late, or never), over real HTTP.

Every candidate remembers what the server acknowledged, so the demo can check the
pipeline's results against an independent account of what should count.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx


class Behaviour(StrEnum):
    ON_TIME = "on_time"  # submits before the deadline
    IN_GRACE = "in_grace"  # submits just after the deadline, inside the grace period
    LATE = "late"  # keeps saving past deadline + grace, then submits too late
    VANISHES = "vanishes"  # stops part-way and never submits: expires


@dataclass
class AcceptedSave:
    question_id: str
    client_seq: int
    answer: dict[str, Any]  # the save body's answer fields
    server_ts: datetime


@dataclass
class CandidateLog:
    """What the server acknowledged to one candidate."""

    email: str
    name: str
    behaviour: Behaviour
    attempt_id: str = ""
    deadline: datetime | None = None
    accepted: dict[str, int] = field(default_factory=dict)  # event kind -> count
    saves: list[AcceptedSave] = field(default_factory=list)
    submitted_at: datetime | None = None
    errors: list[str] = field(default_factory=list)

    def count(self, kind: str) -> None:
        self.accepted[kind] = self.accepted.get(kind, 0) + 1


def choose_behaviour(rng: random.Random) -> Behaviour:
    roll = rng.random()
    if roll < 0.06:
        return Behaviour.LATE
    if roll < 0.11:
        return Behaviour.VANISHES
    if roll < 0.15:
        return Behaviour.IN_GRACE
    return Behaviour.ON_TIME


@dataclass(frozen=True)
class DemoAnswers:
    """What candidates write for the questions without options."""

    subjective: tuple[str, ...]
    coding: tuple[dict[str, Any], ...]  # language, source, and the score it must earn


def _answer_for(
    question: dict[str, Any], answers: DemoAnswers, rng: random.Random
) -> dict[str, Any]:
    """The answer fields of one save."""
    if question["kind"] == "subjective":
        return {"text": rng.choice(answers.subjective)}
    if question["kind"] == "coding":
        # Most write one of the Python answers; a few use C++.
        choice = rng.choices(
            answers.coding, weights=[5 if a["language"] == "python3" else 1 for a in answers.coding]
        )[0]
        return {"text": choice["source"], "language": choice["language"]}
    count = len(question["options"])
    if question["kind"] == "mcq_single":
        return {"selected_options": [rng.randrange(count)]}
    picks = rng.sample(range(count), rng.randint(1, min(3, count)))
    return {"selected_options": sorted(picks)}


class Candidate:
    """One simulated candidate driving the ingest API."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        contest_id: str,
        number: int,
        grace_seconds: int,
        seed: int,
        answers: DemoAnswers,
    ) -> None:
        self.client = client
        self.answers = answers
        self.contest_id = contest_id
        self.rng = random.Random(seed * 10_007 + number)
        self.grace = timedelta(seconds=grace_seconds)
        self.log = CandidateLog(
            email=f"candidate{number:05d}@example.org",
            name=f"Candidate {number:05d}",
            behaviour=choose_behaviour(self.rng),
        )
        self.token = ""
        self.seq = 0
        self.questions: list[dict[str, Any]] = []
        self.server_offset = timedelta(0)  # server clock minus ours, from the start reply

    def _server_now(self) -> datetime:
        return datetime.now(UTC) + self.server_offset

    async def _post(
        self, path: str, body: dict[str, Any], kind: str, refusals: tuple[int, ...] = ()
    ) -> dict[str, Any] | None:
        """POST with retries on transport errors, 429 and 503; a status in `refusals` is
        an expected answer (None), any other failure is recorded as a client error."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        for attempt in range(5):
            try:
                response = await self.client.post(path, json=body, headers=headers)
            except httpx.TransportError as exc:
                if attempt == 4:
                    self.log.errors.append(f"{kind}: {exc!r}")
                    return None
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code == 202:
                self.log.count(kind)
                result: dict[str, Any] = response.json()
                return result
            if response.status_code in refusals:
                self.log.count(f"{kind}_refused")
                return None
            if response.status_code in (429, 503) and attempt < 4:
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            self.log.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return None
        return None

    async def _save_one(self) -> None:
        question = self.rng.choice(self.questions)
        self.seq += 1
        answer = _answer_for(question, self.answers, self.rng)
        reply = await self._post(
            f"/api/v1/attempt/{self.log.attempt_id}/save",
            {"question_id": question["question_id"], "client_seq": self.seq, **answer},
            "save",
        )
        if reply is not None:
            self.log.saves.append(
                AcceptedSave(
                    question["question_id"],
                    self.seq,
                    answer,
                    datetime.fromisoformat(reply["server_ts"]),
                )
            )

    async def _heartbeat(self) -> None:
        kind = "heartbeat" if self.rng.random() > 0.1 else self.rng.choice(["blur", "focus"])
        await self._post(
            f"/api/v1/attempt/{self.log.attempt_id}/heartbeat", {"kind": kind}, "heartbeat"
        )

    async def _work_until(self, until: datetime) -> None:
        next_beat = self._server_now()
        while self._server_now() < until:
            # Wake at `until` at the latest: an in-grace submit must not drift past grace.
            left = (until - self._server_now()).total_seconds()
            await asyncio.sleep(max(0.0, min(self.rng.uniform(1.0, 3.0), left)))
            if self._server_now() >= until:
                break
            await self._save_one()
            if self._server_now() >= next_beat:
                await self._heartbeat()
                next_beat = self._server_now() + timedelta(seconds=5)

    async def run(self, start_delay: float) -> CandidateLog:
        await asyncio.sleep(start_delay)
        started = await self._post(
            f"/api/v1/contest/{self.contest_id}/start",
            {"email": self.log.email, "name": self.log.name},
            "start",
        )
        if started is None:
            return self.log
        self.token = started["token"]
        self.log.attempt_id = started["attempt_id"]
        self.questions = started["questions"]
        server_time = datetime.fromisoformat(started["server_time"])
        self.server_offset = server_time - datetime.now(UTC)
        deadline = datetime.fromisoformat(started["deadline"])
        self.log.deadline = deadline
        behaviour = self.log.behaviour
        span = deadline - server_time
        if behaviour is Behaviour.ON_TIME:
            finish = server_time + span * self.rng.uniform(0.6, 0.95)
        elif behaviour is Behaviour.IN_GRACE:
            finish = deadline + self.grace * 0.3
        elif behaviour is Behaviour.LATE:
            finish = deadline + self.grace + timedelta(seconds=self.rng.uniform(1.5, 4.0))
        else:
            finish = server_time + span * self.rng.uniform(0.3, 0.6)
        await self._work_until(finish)
        if behaviour is Behaviour.LATE:
            await self._save_one()  # certainly past deadline + grace: kept, marked late
        if behaviour is not Behaviour.VANISHES:
            # Past deadline + grace the server refuses the submit (409): expected.
            refusals = (409,) if behaviour is Behaviour.LATE else ()
            reply = await self._post(
                f"/api/v1/attempt/{self.log.attempt_id}/submit", {}, "submit", refusals
            )
            if reply is not None:
                self.log.submitted_at = datetime.fromisoformat(reply["server_ts"])
        return self.log
