"""Ingest's attempt clocks forget finished attempts of long-closed contests, so a
process's memory follows the open contests, not the platform's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from avro_schemas.codec import Decoded
from avro_schemas.records import Record
from ingest.clocks import AttemptClocks

NOW = datetime.now(UTC)
ENDS = {"old": NOW - timedelta(days=3), "open": NOW + timedelta(hours=1)}


def clock(attempt_id: str, contest_id: str, status: str) -> Decoded:
    started = NOW - timedelta(days=4) if contest_id == "old" else NOW
    return Decoded(
        Record.ATTEMPT_CLOCK,
        {
            "attempt_id": attempt_id,
            "contest_id": contest_id,
            "started_at": started,
            "deadline": started + timedelta(hours=1),
            "status": status,
            "finished_at": None if status == "active" else started + timedelta(minutes=30),
            "extension_seconds": 0,
        },
        1,
    )


def test_finished_attempts_of_closed_contests_are_forgotten_as_the_map_grows() -> None:
    clocks = AttemptClocks(contest_end=ENDS.get, first_sweep_at=4)
    clocks.apply(clock("a1", "old", "submitted"))
    clocks.apply(clock("a2", "old", "active"))  # never finished: kept
    clocks.apply(clock("a3", "open", "submitted"))  # its contest is still open: kept
    assert set(clocks.clocks) == {"a1", "a2", "a3"}
    clocks.apply(clock("a4", "unknown", "expired"))  # no definition: kept
    assert set(clocks.clocks) == {"a2", "a3", "a4"}
    assert clocks.get("a3") is not None


def test_sweeps_are_spaced_by_the_map_doubling() -> None:
    clocks = AttemptClocks(contest_end=ENDS.get, first_sweep_at=2)
    for n in range(6):
        clocks.apply(clock(f"open-{n}", "open", "submitted"))
    clocks.apply(clock("gone", "old", "submitted"))
    assert "gone" in clocks.clocks  # 7 clocks: the last sweep, at 4, set the next at 8
    for n in range(5):
        clocks.apply(clock(f"more-{n}", "open", "active"))
    assert "gone" not in clocks.clocks
