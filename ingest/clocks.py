"""Every attempt's server clock, followed from the compacted attempt-clock topic the
stream publishes, so ingest can tell a candidate the true deadline: after a reload,
after an extension, whatever the candidate's own clock says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from avro_schemas.codec import Decoded
from avro_schemas.records import Record
from streams.rules.timing import server_now


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


# Finished attempts of a contest that closed this long ago are forgotten: starting one
# again is refused for the closed contest anyway, and its countdown is at zero.
KEEP_AFTER_CLOSE = timedelta(days=1)


class AttemptClocks:
    """The latest clock of every attempt this process has heard of, except finished
    ones of long-closed contests.

    Those are swept whenever the map has doubled since the last sweep: amortised
    constant work per record, and memory within twice what open contests need.
    """

    def __init__(
        self,
        contest_end: Callable[[str], datetime | None] = lambda _: None,
        keep_after_close: timedelta = KEEP_AFTER_CLOSE,
        first_sweep_at: int = 10_000,
    ) -> None:
        self.clocks: dict[str, AttemptClock] = {}
        self.ready = asyncio.Event()
        self.contest_end = contest_end
        self.keep_after_close = keep_after_close
        self.first_sweep_at = first_sweep_at
        self._sweep_at = first_sweep_at

    def forget_closed(self, now: datetime) -> int:
        """Drop finished attempts of contests closed over `keep_after_close` ago."""
        cutoff = now - self.keep_after_close
        gone = [
            attempt_id
            for attempt_id, clock in self.clocks.items()
            if clock.is_finished
            and (end := self.contest_end(clock.contest_id)) is not None
            and end < cutoff
        ]
        for attempt_id in gone:
            del self.clocks[attempt_id]
        self._sweep_at = max(2 * len(self.clocks), self.first_sweep_at)
        return len(gone)

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
        if len(self.clocks) >= self._sweep_at:
            self.forget_closed(server_now())

    def get(self, attempt_id: str) -> AttemptClock | None:
        return self.clocks.get(attempt_id)
