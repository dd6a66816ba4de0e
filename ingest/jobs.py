"""Run-code job ids that carry the time they were issued (UUID version 7, RFC 9562), so a
poll for a job with no result can tell a run still queued from a job that never was."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

# Longer than any run waits in a busy queue; a job with no result after this is gone.
JOB_HORIZON = timedelta(minutes=30)


def new_job_id(now: datetime) -> str:
    """A version 7 UUID: 48 bits of Unix milliseconds, then random bits."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return str(uuid.UUID(int=value))


def job_issued_at(job_id: str) -> datetime | None:
    """When a job id from `new_job_id` was issued; None for any other id."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    try:
        return datetime.fromtimestamp((parsed.int >> 80) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):  # a time no job of ours was issued at
        return None


def job_lapsed(job_id: str, now: datetime) -> bool:
    """True when no result can still come for this job: not one of ours, or too old."""
    issued = job_issued_at(job_id)
    return issued is None or not (now - JOB_HORIZON <= issued <= now + timedelta(minutes=1))
