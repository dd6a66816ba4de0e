"""Server-authoritative time: an attempt's deadline and whether an event counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def attempt_deadline(
    started_at: datetime,
    duration_seconds: int,
    extension_seconds: int,
    contest_end: datetime,
) -> datetime:
    """start + duration + extensions, never past the contest's end."""
    personal = started_at + timedelta(seconds=duration_seconds + extension_seconds)
    return min(personal, contest_end)


def counts_by(deadline: datetime, grace_seconds: int) -> datetime:
    """The last server time at which an event still counts: the deadline plus grace."""
    return deadline + timedelta(seconds=grace_seconds)


def is_on_time(server_ts: datetime, deadline: datetime, grace_seconds: int) -> bool:
    """True when an event received at `server_ts` counts; later ones are kept but marked late."""
    return server_ts <= counts_by(deadline, grace_seconds)


def contest_is_open(now: datetime, start_at: datetime, end_at: datetime) -> bool:
    """A candidate may start an attempt only inside the contest window."""
    return start_at <= now < end_at


def server_now() -> datetime:
    """The current UTC time at the wire's precision (milliseconds), so a time the client
    is told equals the time every consumer decides with."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
