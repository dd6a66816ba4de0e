"""Published contests and questions, followed from the compacted definitions topic.

Ingest and the stream workers each keep the whole (small) definitions topic in memory:
every process needs every contest, and reading a compacted topic from the start is how
a process learns them with no database on its path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from avro_schemas.codec import Decoded
from avro_schemas.records import Record
from avro_schemas.topics import DEFINITIONS
from elevate.kafka import follow_topic
from elevate.settings import Settings
from streams.rules.attempt import ContestTiming, QuestionKey
from streams.rules.execution import CompareMode, RunLimits, TestCase
from streams.rules.scoring import QuestionKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    question_id: str
    contest_id: str
    kind: QuestionKind
    prompt: str
    options: tuple[str, ...]
    correct_options: frozenset[int]
    max_marks: float
    negative_marks: float
    partial_credit: bool
    position: int
    revision: int
    rubric: str = ""
    languages: tuple[str, ...] = ()
    time_limit_ms: int = 2000
    memory_limit_mb: int = 256
    compare_mode: CompareMode = CompareMode.TRIM
    abs_tolerance: float = 1e-6
    rel_tolerance: float = 1e-6
    sample_tests: tuple[TestCase, ...] = ()
    hidden_tests: tuple[TestCase, ...] = ()

    @property
    def limits(self) -> RunLimits:
        """Per-run limits: the CPU limit as set, wall time with room for a busy machine."""
        cpu = self.time_limit_ms / 1000
        return RunLimits(cpu_seconds=cpu, wall_seconds=cpu * 2 + 1, memory_mb=self.memory_limit_mb)

    def grading_key(self) -> QuestionKey:
        return QuestionKey(
            question_id=self.question_id,
            kind=self.kind,
            option_count=len(self.options),
            correct=self.correct_options,
            max_marks=self.max_marks,
            negative_marks=self.negative_marks,
            partial_credit=self.partial_credit,
            revision=self.revision,
        )


@dataclass(frozen=True)
class Contest:
    contest_id: str
    name: str
    description: str
    start_at: datetime
    end_at: datetime
    duration_seconds: int
    question_ids: tuple[str, ...]

    @property
    def timing(self) -> ContestTiming:
        return ContestTiming(duration_seconds=self.duration_seconds, end_at=self.end_at)


def _test_case(value: dict[str, Any]) -> TestCase:
    return TestCase(
        test_id=value["test_id"],
        input=value["input"],
        expected=value["expected"],
        weight=float(value["weight"]),
        subtask=value["subtask"],
    )


class DefinitionsView:
    """The latest definition of every published contest and question."""

    def __init__(self) -> None:
        self.contests: dict[str, Contest] = {}
        self.questions: dict[str, Question] = {}
        self.ready = asyncio.Event()
        self._changed = asyncio.Condition()

    def apply(self, name: str, value: dict[str, Any]) -> None:
        """Take one decoded definition record."""
        if name == Record.QUESTION_DEFINITION:
            self.questions[value["question_id"]] = Question(
                question_id=value["question_id"],
                contest_id=value["contest_id"],
                kind=QuestionKind(value["kind"]),
                prompt=value["prompt"],
                options=tuple(value["options"]),
                correct_options=frozenset(value["correct_options"]),
                max_marks=float(value["max_marks"]),
                negative_marks=float(value["negative_marks"]),
                partial_credit=bool(value["partial_credit"]),
                position=int(value["position"]),
                revision=int(value["revision"]),
                rubric=value["rubric"],
                languages=tuple(value["languages"]),
                time_limit_ms=int(value["time_limit_ms"]),
                memory_limit_mb=int(value["memory_limit_mb"]),
                compare_mode=CompareMode(value["compare_mode"]),
                abs_tolerance=float(value["abs_tolerance"]),
                rel_tolerance=float(value["rel_tolerance"]),
                sample_tests=tuple(_test_case(t) for t in value["sample_tests"]),
                hidden_tests=tuple(_test_case(t) for t in value["hidden_tests"]),
            )
        elif name == Record.CONTEST_DEFINITION:
            self.contests[value["contest_id"]] = Contest(
                contest_id=value["contest_id"],
                name=value["name"],
                description=value["description"],
                start_at=value["start_at"],
                end_at=value["end_at"],
                duration_seconds=int(value["duration_seconds"]),
                question_ids=tuple(value["question_ids"]),
            )

    def contest_end(self, contest_id: str) -> datetime | None:
        """When a known contest closes; None for one not (yet) defined."""
        contest = self.contests.get(contest_id)
        return contest.end_at if contest is not None else None

    def questions_of(self, contest: Contest) -> list[Question]:
        """The contest's questions in their published order (missing ones skipped)."""
        return [self.questions[q] for q in contest.question_ids if q in self.questions]

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Wait briefly for definitions that may still be on their way."""
        if condition():
            return True
        try:
            async with asyncio.timeout(seconds), self._changed:
                await self._changed.wait_for(condition)
        except TimeoutError:
            return False
        return True

    async def wait_for_contest(self, contest_id: str, seconds: float) -> Contest | None:
        """The contest, waiting briefly for a definition that may still be on its way."""
        await self.wait_until(lambda: contest_id in self.contests, seconds)
        return self.contests.get(contest_id)

    async def wait_for_revision(self, question_id: str, revision: int, seconds: float) -> bool:
        """True once the question's definition is at `revision` or later."""

        def known() -> bool:
            question = self.questions.get(question_id)
            return question is not None and question.revision >= revision

        return await self.wait_until(known, seconds)


async def follow_definitions(settings: Settings, view: DefinitionsView) -> None:
    """Keep `view` up to date with the definitions topic, forever."""

    def apply(decoded: Decoded) -> None:
        view.apply(decoded.name, decoded.value)

    await follow_topic(settings, DEFINITIONS, apply, view.ready, view.notify)
    log.info("definitions follower stopped")
