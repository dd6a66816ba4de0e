"""Every attempt's server clock, followed from the compacted attempt-clock topic the
stream publishes, so ingest can tell a candidate the true deadline: after a reload,
after an extension, whatever the candidate's own clock says."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from avro_schemas.codec import Decoded
from avro_schemas.records import Record


@dataclass(frozen=True)
class AttemptClock:
    attempt_id: str
    contest_id: str
    started_at: datetime
    deadline: datetime
    status: str
    finished_at: datetime | None
    extension_seconds: int

    @property
    def is_finished(self) -> bool:
        return self.status != "active"


class AttemptClocks:
    """The latest clock of every attempt this process has heard of."""

    def __init__(self) -> None:
        self.clocks: dict[str, AttemptClock] = {}
        self.ready = asyncio.Event()

    def apply(self, decoded: Decoded) -> None:
        if decoded.name != Record.ATTEMPT_CLOCK:
            return
        v = decoded.value
        self.clocks[v["attempt_id"]] = AttemptClock(
            attempt_id=v["attempt_id"],
            contest_id=v["contest_id"],
            started_at=v["started_at"],
            deadline=v["deadline"],
            status=v["status"],
            finished_at=v["finished_at"],
            extension_seconds=v["extension_seconds"],
        )

    def get(self, attempt_id: str) -> AttemptClock | None:
        return self.clocks.get(attempt_id)
