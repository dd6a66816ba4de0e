"""Run-code job ids tell a queued run from a job that never was."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from ingest.jobs import JOB_HORIZON, job_issued_at, job_lapsed, new_job_id

NOW = datetime(2026, 12, 3, 19, 30, 15, 123000, tzinfo=UTC)


def test_a_job_id_is_a_version_7_uuid_carrying_its_issue_time() -> None:
    job = new_job_id(NOW)
    assert uuid.UUID(job).version == 7
    assert uuid.UUID(job).variant == uuid.RFC_4122
    assert job_issued_at(job) == NOW
    assert new_job_id(NOW) != job


def test_a_fresh_job_waits_and_an_unknown_or_old_one_has_lapsed() -> None:
    assert not job_lapsed(new_job_id(NOW), NOW + timedelta(seconds=30))
    assert job_lapsed(new_job_id(NOW), NOW + JOB_HORIZON + timedelta(seconds=1))
    assert job_lapsed(str(uuid.uuid4()), NOW)
    assert job_lapsed("not-a-uuid", NOW)
    assert job_lapsed(new_job_id(NOW + timedelta(hours=1)), NOW)  # not issued yet


def test_a_version_7_id_with_an_impossible_time_has_lapsed() -> None:
    assert job_issued_at("ffffffff-ffff-7fff-bfff-ffffffffffff") is None
    assert job_lapsed("ffffffff-ffff-7fff-bfff-ffffffffffff", NOW)
