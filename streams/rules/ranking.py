"""Leaderboard order: higher total first, then the earlier last score change, then the
earlier start. Attempts equal on all three share a rank (1, 2, 2, 4)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Standing:
    attempt_id: str
    participant_name: str
    total_score: float
    score_changed_at: datetime
    started_at: datetime


def ranking_key(standing: Standing) -> tuple[float, datetime, datetime]:
    """The sort key that decides the order; the attempt id only makes it stable."""
    return (-standing.total_score, standing.score_changed_at, standing.started_at)


class LeaderboardIndex:
    """One contest's standings kept in order, so an update finds its rank by bisection
    instead of re-sorting the whole contest."""

    def __init__(self) -> None:
        self._keys: list[tuple[float, datetime, datetime]] = []
        self._by_attempt: dict[str, Standing] = {}

    def __len__(self) -> int:
        return len(self._by_attempt)

    def remove(self, attempt_id: str) -> None:
        old = self._by_attempt.pop(attempt_id, None)
        if old is not None:
            self._keys.pop(bisect.bisect_left(self._keys, ranking_key(old)))

    def upsert(self, standing: Standing) -> int:
        """Place (or move) the attempt and return its competition rank."""
        self.remove(standing.attempt_id)
        key = ranking_key(standing)
        position = bisect.bisect_left(self._keys, key)
        self._keys.insert(position, key)
        self._by_attempt[standing.attempt_id] = standing
        return position + 1  # everyone before it is strictly better


def rank(standings: Iterable[Standing]) -> list[tuple[int, Standing]]:
    """Standings in leaderboard order with their 1-based competition rank."""
    ordered = sorted(standings, key=lambda s: (*ranking_key(s), s.attempt_id))
    ranked: list[tuple[int, Standing]] = []
    for position, standing in enumerate(ordered, start=1):
        if ranked and ranking_key(ranked[-1][1]) == ranking_key(standing):
            ranked.append((ranked[-1][0], standing))
        else:
            ranked.append((position, standing))
    return ranked
