"""Deadlines, grace, and leaderboard order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from streams.rules.ranking import LeaderboardIndex, Standing, rank
from streams.rules.timing import attempt_deadline, contest_is_open, is_on_time, server_now

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_deadline_is_start_plus_duration_plus_extensions() -> None:
    assert attempt_deadline(T0, 600, 120, T0 + timedelta(hours=1)) == T0 + timedelta(minutes=12)


def test_deadline_is_capped_by_the_contest_end() -> None:
    end = T0 + timedelta(minutes=5)
    assert attempt_deadline(T0, 600, 0, end) == end


def test_grace_period_counts_and_after_it_nothing_does() -> None:
    deadline = T0 + timedelta(minutes=10)
    assert is_on_time(deadline + timedelta(seconds=1), deadline, grace_seconds=120)
    assert is_on_time(deadline + timedelta(seconds=120), deadline, grace_seconds=120)
    assert not is_on_time(T0 + timedelta(minutes=12, seconds=5), deadline, grace_seconds=120)


def test_contest_window_is_half_open() -> None:
    end = T0 + timedelta(hours=1)
    assert contest_is_open(T0, T0, end)
    assert not contest_is_open(end, T0, end)
    assert not contest_is_open(T0 - timedelta(seconds=1), T0, end)


def test_server_now_is_utc_at_millisecond_precision() -> None:
    now = server_now()
    assert now.tzinfo is UTC and now.microsecond % 1000 == 0


def _standing(n: int, score: float, changed: int, started: int) -> Standing:
    return Standing(
        f"a{n}", f"P{n}", score, T0 + timedelta(seconds=changed), T0 + timedelta(seconds=started)
    )


def test_rank_orders_by_score_then_last_change_then_start() -> None:
    standings = [
        _standing(1, 10, changed=50, started=0),
        _standing(2, 12, changed=90, started=0),
        _standing(3, 10, changed=40, started=5),
        _standing(4, 10, changed=40, started=1),
    ]
    assert [(r, s.attempt_id) for r, s in rank(standings)] == [
        (1, "a2"),
        (2, "a4"),
        (3, "a3"),
        (4, "a1"),
    ]


def test_full_ties_share_a_rank() -> None:
    standings = [_standing(1, 5, 1, 1), _standing(2, 5, 1, 1), _standing(3, 1, 1, 1)]
    assert [r for r, _ in rank(standings)] == [1, 1, 3]


def test_index_agrees_with_a_full_sort_under_random_updates() -> None:
    rng = random.Random(7)
    index = LeaderboardIndex()
    current: dict[str, Standing] = {}
    for _ in range(2000):
        n = rng.randrange(60)
        standing = _standing(n, rng.randrange(5), rng.randrange(4), rng.randrange(3))
        placed = index.upsert(standing)
        current[standing.attempt_id] = standing
        expected = {s.attempt_id: r for r, s in rank(current.values())}
        assert placed == expected[standing.attempt_id]
        if rng.random() < 0.05:
            index.remove(standing.attempt_id)
            del current[standing.attempt_id]
    assert len(index) == len(current)
