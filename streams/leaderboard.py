"""The leaderboard agent: attempt totals regrouped by contest, ranked as they change.

Standings live in a table keyed by contest and attempt (small changelog records); the
ordered index per contest is memory only, rebuilt from the table when first needed.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import msgspec
from faust.types import StreamT

from avro_schemas.codec import decode
from avro_schemas.records import Record
from streams.app import (
    app,
    dead_lettering,
    emit,
    gap_repair,
    leaderboard_topic,
    scores_by_contest_topic,
)
from streams.rules.ranking import LeaderboardIndex, Standing

log = logging.getLogger(__name__)

UPDATE_NAMESPACE = uuid.UUID("5d0b7e3a-93a4-4c7e-b1f0-2a8d6c4e9f17")


class StoredStanding(msgspec.Struct, frozen=True):
    attempt_id: str
    participant_name: str
    total_score: float
    score_changed_at: datetime
    started_at: datetime

    def standing(self) -> Standing:
        return Standing(
            self.attempt_id,
            self.participant_name,
            self.total_score,
            self.score_changed_at,
            self.started_at,
        )


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(StoredStanding)

standings_table = app.Table(
    "standings", default=None, key_type=bytes, value_type=bytes, partitions=6
)
_indexes: dict[str, LeaderboardIndex] = {}
scores_gap_repair = gap_repair("standings-reached", scores_by_contest_topic)


def _index_for(contest_id: str) -> LeaderboardIndex:
    index = _indexes.get(contest_id)
    if index is None:
        index = LeaderboardIndex()
        prefix = f"{contest_id}/".encode()
        for key, stored in list(standings_table.items()):
            if key.startswith(prefix) and stored:
                index.upsert(_decoder.decode(stored).standing())
        _indexes[contest_id] = index
    return index


@dead_lettering("attempt total")
async def rank_one(key: bytes | None, value: bytes | None, topic: str) -> None:
    """Place one finished (or regraded, or invalidated) attempt on its contest's board."""
    decoded = decode(value)
    if decoded.name != Record.ATTEMPT_SCORED:
        raise ValueError(f"{decoded.name} does not belong on the scores topic")
    await place(decoded.value)


async def place(scored: dict[str, Any]) -> None:
    contest_id, attempt_id = scored["contest_id"], scored["attempt_id"]
    index = _index_for(contest_id)
    key = f"{contest_id}/{attempt_id}".encode()
    invalidated = scored["status"] == "invalidated"
    standing = Standing(
        attempt_id,
        scored["participant_name"],
        scored["total_score"],
        scored["score_changed_at"],
        scored["started_at"],
    )
    if invalidated:
        index.remove(attempt_id)
        standings_table[key] = b""
        rank = 0
    else:
        rank = index.upsert(standing)
        standings_table[key] = _encoder.encode(
            StoredStanding(
                attempt_id,
                standing.participant_name,
                standing.total_score,
                standing.score_changed_at,
                standing.started_at,
            )
        )
    await emit(
        leaderboard_topic,
        Record.LEADERBOARD_UPDATE,
        contest_id,
        {
            "event_id": str(uuid.uuid5(UPDATE_NAMESPACE, scored["event_id"])),
            "contest_id": contest_id,
            "attempt_id": attempt_id,
            "participant_name": standing.participant_name,
            "total_score": standing.total_score,
            "rank": rank,
            "score_changed_at": standing.score_changed_at,
            "started_at": standing.started_at,
            "invalidated": invalidated,
            # The grading's own time: the same grading replayed updates nothing.
            "updated_at": scored["graded_at"],
        },
    )


@app.agent(scores_by_contest_topic)
async def rank_attempts(stream: StreamT[bytes]) -> None:
    """Rank every attempt total, none skipped (see streams.gaps)."""
    await scores_gap_repair.apply(stream, rank_one)
