"""The one interface grading uses to run code, and the choice of backend.

Judge0 when `JUDGE0_URL` is set, otherwise the local bubblewrap sandbox. Both return the
same `ExecutionResult` with the same verdict vocabulary (streams.rules.execution).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from elevate.settings import Settings
from streams.execution.judge0 import Judge0Config, Judge0Runner
from streams.execution.sandbox import SandboxRunner
from streams.rules.execution import CompareMode, ExecutionResult, RunLimits, TestCase


class CodeRunner(Protocol):
    """Compiles a submission once and runs it on every test case."""

    async def execute(
        self,
        language: str,
        source: str,
        tests: Sequence[TestCase],
        limits: RunLimits,
        compare: CompareMode,
    ) -> ExecutionResult:
        """Run `source` on `tests` and judge each run. Raises UnsupportedLanguageError
        for a language it does not know; its own failures give IE verdicts."""
        ...

    async def aclose(self) -> None:
        """Release what the runner holds (connections, its working folder)."""
        ...


def create_runner(settings: Settings) -> CodeRunner:
    """Judge0 when a Judge0 URL is configured, else the local sandbox."""
    if settings.judge0_url:
        return Judge0Runner(
            Judge0Config(
                url=settings.judge0_url,
                auth_header=settings.judge0_auth_header,
                auth_token=settings.judge0_auth_token.get_secret_value(),
                max_attempts=settings.judge0_max_attempts,
                timeout_seconds=settings.judge0_timeout_seconds,
            )
        )
    return SandboxRunner(settings.execution_workers, sandbox_uid=settings.sandbox_uid)
