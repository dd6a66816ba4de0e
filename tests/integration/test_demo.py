"""The main job end to end: `elevate demo` on a small crowd, judged by its summary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from elevate.settings import Settings
from tests.conftest import isolated_env

pytestmark = pytest.mark.integration


def test_demo_loses_nothing_and_scores_match(
    service_settings: Settings, fresh_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = isolated_env(service_settings, fresh_database, tmp_path_factory.mktemp("demo-home"))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "elevate",
            "demo",
            "--candidates",
            "40",
            "--duration-seconds",
            "12",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["candidates"] == 40
    assert summary["lost"] == 0
    assert summary["scores_match"] is True
    assert summary["client_errors"] == []
    assert summary["attempts_submitted"] + summary["attempts_expired"] == 40
    assert summary["leaderboard_rows"] == 40
    assert summary["responses_in_postgres"] == 40 * 20  # 18 MCQs, 1 written, 1 coding
    assert summary["coding_answers_judged"] > 0
    assert summary["coding_answers_awaiting_run"] == 0
    assert summary["saves_in_postgres"] == summary["events_accepted_by_kind"]["AnswerSaved"]
    assert summary["events_in_clickhouse"] == summary["events_accepted"]
    if summary["candidates_late_by_design"]:
        assert summary["late_saves_not_counted"] >= summary["candidates_late_by_design"]
    assert len(summary["top10"]) == 10
    assert [row["rank"] for row in summary["top10"]] == sorted(r["rank"] for r in summary["top10"])
