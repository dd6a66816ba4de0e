"""Attempts as invigilators watch them: status, deadline, time left, saves.

The sinks write an attempt's deadline only once it is finished; a running attempt's
deadline is computed here by the stream's own rule (`streams.rules.timing`) from its
start, the contest's duration and end, and the extensions this API granted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from api.schemas import AttemptLive
from streams.rules.timing import attempt_deadline

# Attempts with their contest's timing, granted extensions and counted saves. The
# lateral subqueries run per attempt of the page, each on an index.
LIVE_ATTEMPT_SELECT = """
SELECT a.id AS attempt_id, a.contest_id, a.participant_id, a.participant_email,
       a.participant_name, a.status, a.started_at, a.deadline AS stored_deadline,
       a.finished_at, a.total_score, a.max_score,
       c.duration_seconds, c.end_at AS contest_end,
       coalesce(x.extension_seconds, 0) AS extension_seconds,
       coalesce(s.answers_saved, 0) AS answers_saved,
       p.connection, p.risk_score, p.reasons AS risk_reasons
FROM attempts a
LEFT JOIN contests c ON c.id = a.contest_id
LEFT JOIN proctoring p ON p.attempt_id = a.id
LEFT JOIN LATERAL (
    SELECT sum(e.extra_seconds) AS extension_seconds
    FROM attempt_extensions e WHERE e.attempt_id = a.id
) x ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS answers_saved
    FROM answer_saves s WHERE s.attempt_id = a.id AND s.status = 'counted'
) s ON true
"""


# The stream's connection states, as the monitoring view names them.
CONNECTIONS: dict[str | None, Literal["connected", "idle", "disconnected"]] = {
    "active": "connected",
    "idle": "idle",
    "disconnected": "disconnected",
}


def current_deadline(row: dict[str, Any]) -> datetime | None:
    """The attempt's deadline: the stored one once finished, else start + duration +
    extensions capped by the contest's end (None if the contest is unknown)."""
    if row["status"] != "active" and row["stored_deadline"] is not None:
        stored: datetime = row["stored_deadline"]
        return stored
    if row["duration_seconds"] is None or row["contest_end"] is None:
        return None
    return attempt_deadline(
        row["started_at"],
        int(row["duration_seconds"]),
        int(row["extension_seconds"]),
        row["contest_end"],
    )


def seconds_left(deadline: datetime | None, now: datetime) -> int:
    """Whole seconds from `now` to the deadline; 0 once it has passed."""
    if deadline is None:
        return 0
    return max(0, int((deadline - now).total_seconds()))


def live_attempt(row: dict[str, Any], now: datetime) -> AttemptLive:
    """The monitoring view of one LIVE_ATTEMPT_SELECT row at server time `now`."""
    deadline = current_deadline(row)
    active = row["status"] == "active"
    return AttemptLive(
        attempt_id=row["attempt_id"],
        contest_id=row["contest_id"],
        participant_id=row["participant_id"],
        participant_email=row["participant_email"],
        participant_name=row["participant_name"],
        status=row["status"],
        connection=CONNECTIONS.get(row["connection"]) if active else None,
        started_at=row["started_at"],
        deadline=deadline,
        finished_at=row["finished_at"],
        time_left_seconds=seconds_left(deadline, now) if active else None,
        extension_seconds=int(row["extension_seconds"]),
        answers_saved=int(row["answers_saved"]),
        total_score=row["total_score"],
        max_score=row["max_score"],
        risk_score=row["risk_score"],
        proctoring_flags=list(row["risk_reasons"] or []),
    )
