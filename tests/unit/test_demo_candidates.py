"""The demo's simulated candidates act when their behaviour says, by the server's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from elevate.demo import candidates
from elevate.demo.candidates import Behaviour, Candidate, CandidateLog, DemoAnswers
from elevate.demo.run import acknowledged_events


async def test_work_ends_at_its_time_not_after_a_last_long_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An in-grace submit comes right at its planned time: a candidate who napped up to
    3 s past it could miss the grace period."""
    clock = [datetime(2026, 12, 3, 12, 0, tzinfo=UTC)]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    async def nothing() -> None:
        return None

    monkeypatch.setattr(candidates.asyncio, "sleep", fake_sleep)
    async with httpx.AsyncClient() as client:
        person = Candidate(client, "c", 1, grace_seconds=5, seed=7, answers=DemoAnswers((), ()))
        monkeypatch.setattr(person, "_server_now", lambda: clock[0])
        monkeypatch.setattr(person, "_save_one", nothing)
        monkeypatch.setattr(person, "_heartbeat", nothing)
        until = clock[0] + timedelta(seconds=10.5)
        await person._work_until(until)
    assert clock[0] == until


def test_the_progress_line_counts_no_refused_request_as_an_event() -> None:
    log = CandidateLog("late@example.org", "Late", Behaviour.LATE)
    for kind in ("start", "save", "save", "heartbeat", "submit_refused"):
        log.count(kind)
    assert acknowledged_events(log) == 4
