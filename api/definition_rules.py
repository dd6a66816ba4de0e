"""What makes a contest or question definition valid: plain functions over plain data.

Routes check a create request and a merged PATCH with the same functions, so a draft
can never be edited into a state it could not have been created in. Each problem names
the request field it is about, relative to the request body.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from api.schemas import CodingSpec
from streams.rules.scoring import QuestionKind

MCQ_KINDS = frozenset({QuestionKind.MCQ_SINGLE, QuestionKind.MCQ_MULTI})
MIN_MCQ_OPTIONS = 2
# Graders read rubrics; coding answers are graded by hand until a judge scores them.
RUBRIC_KINDS = frozenset({QuestionKind.SUBJECTIVE, QuestionKind.CODING})
# The tests of one question live in a jsonb cell and travel to the judge whole, inside
# the question's definition (see avro_schemas.topics.DEFINITIONS).
MAX_CODING_TEST_BYTES = 16 * 1024 * 1024
CODING_LOC = ("content", "coding")


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a request, and where in the body it is."""

    loc: tuple[str | int, ...]
    message: str


def requested_duration(
    minutes: int | None, seconds: int | None
) -> tuple[str, int | None, list[FieldProblem]]:
    """The attempt duration in seconds from `duration_minutes` or `duration_seconds`.

    Returns the field it came from (for messages), the seconds (None when neither field
    was given) and a problem when both were given: which one to believe is unclear.
    """
    if minutes is not None and seconds is not None:
        problem = FieldProblem(
            ("duration_seconds",), "give duration_minutes or duration_seconds, not both"
        )
        return "duration_seconds", None, [problem]
    if minutes is not None:
        return "duration_minutes", minutes * 60, []
    return "duration_seconds", seconds, []


def requested_answer_key(
    correct_answer: int | None, correct_answers: list[int] | None
) -> tuple[str, list[int] | None, list[FieldProblem]]:
    """The answer key from `correct_answer` or `correct_answers`.

    Returns the field it came from (for messages), the key (None when neither field
    was given) and a problem when both were given.
    """
    if correct_answer is not None and correct_answers is not None:
        problem = FieldProblem(
            ("content", "correct_answers"), "give correct_answer or correct_answers, not both"
        )
        return "correct_answers", None, [problem]
    if correct_answer is not None:
        return "correct_answer", [correct_answer], []
    return "correct_answers", correct_answers, []


def contest_window_problems(
    start_at: datetime,
    end_at: datetime,
    duration_seconds: int,
    *,
    duration_field: str = "duration_seconds",
) -> list[FieldProblem]:
    """Why the contest's timing is impossible: it must end after it starts, and an
    attempt's duration must fit in the window (a late starter is still cut off at
    `end_at`, but an attempt longer than the whole window can never be completed)."""
    if end_at <= start_at:
        return [FieldProblem(("end_at",), "end_at must be after start_at")]
    window_seconds = int((end_at - start_at).total_seconds())
    if duration_seconds > window_seconds:
        if duration_field == "duration_minutes":
            given, window = f"{duration_seconds // 60} minutes", f"{window_seconds / 60:g} minutes"
        else:
            given, window = f"{duration_seconds} seconds", f"{window_seconds} seconds"
        return [
            FieldProblem(
                (duration_field,),
                f"the duration ({given}) is longer than the window between start_at and"
                f" end_at ({window})",
            )
        ]
    return []


def answer_key_problems(
    kind: QuestionKind,
    options: Sequence[str],
    correct_options: Sequence[int],
    *,
    partial_credit: bool = False,
    key_field: str = "correct_answers",
) -> list[FieldProblem]:
    """Why this answer key cannot grade the question.

    An accepted MCQ key is itself a valid answer (`streams.rules.scoring.
    answer_shape_error` passes it), so the grader can always compare a response to it.
    `key_field` is the request field the key came from: `correct_answer` or
    `correct_answers`.
    """
    problems: list[FieldProblem] = []
    key_loc = ("content", key_field)
    if partial_credit and kind != QuestionKind.MCQ_MULTI:
        problems.append(
            FieldProblem(("scoring", "partial_credit"), "partial credit applies only to mcq_multi")
        )
    if kind not in MCQ_KINDS:
        if options:
            problems.append(
                FieldProblem(
                    ("content", "options"), f"options are only for MCQ questions, not {kind}"
                )
            )
        if correct_options:
            problems.append(
                FieldProblem(key_loc, f"correct answers are only for MCQ questions, not {kind}")
            )
        return problems

    if len(options) < MIN_MCQ_OPTIONS:
        problems.append(
            FieldProblem(
                ("content", "options"),
                f"an MCQ question needs at least {MIN_MCQ_OPTIONS} options, got {len(options)}",
            )
        )
    repeated_options = sorted(o for o, n in Counter(options).items() if n > 1)
    if repeated_options:
        problems.append(
            FieldProblem(
                ("content", "options"), f"options must differ; repeated: {repeated_options}"
            )
        )
    if kind == QuestionKind.MCQ_SINGLE and len(correct_options) != 1:
        problems.append(
            FieldProblem(
                key_loc,
                "a single-answer question needs exactly one correct answer"
                f" (content.correct_answer), got {len(correct_options)}",
            )
        )
    if kind == QuestionKind.MCQ_MULTI and not correct_options:
        problems.append(
            FieldProblem(key_loc, "a multi-select question needs at least one correct answer")
        )
    repeated = sorted(i for i, n in Counter(correct_options).items() if n > 1)
    if repeated:
        problems.append(FieldProblem(key_loc, f"correct answers repeat option {repeated}"))
    out_of_range = sorted({i for i in correct_options if not 0 <= i < len(options)})
    if out_of_range:
        problems.append(
            FieldProblem(
                key_loc,
                f"correct answer index {out_of_range} outside the options"
                f" (0..{len(options) - 1} for {len(options)} options)"
                if options
                else f"correct answer index {out_of_range} given but there are no options",
            )
        )
    return problems


def question_detail_problems(
    kind: QuestionKind, rubric: str | None, coding: CodingSpec | None
) -> list[FieldProblem]:
    """Why the kind-specific parts do not fit the kind: coding details belong to (and
    are needed by) coding questions only, and MCQs have no rubric."""
    problems: list[FieldProblem] = []
    if rubric is not None and kind not in RUBRIC_KINDS:
        problems.append(
            FieldProblem(
                ("content", "rubric"),
                f"a rubric is only for subjective and coding questions, not {kind}",
            )
        )
    if kind == QuestionKind.CODING:
        if coding is None:
            problems.append(
                FieldProblem(
                    CODING_LOC,
                    "a coding question needs content.coding (languages, hidden_tests, ...)",
                )
            )
        else:
            problems += coding_problems(coding)
    elif coding is not None:
        problems.append(
            FieldProblem(CODING_LOC, f"coding details are only for coding questions, not {kind}")
        )
    return problems


def coding_problems(spec: CodingSpec) -> list[FieldProblem]:
    """Why a coding question cannot be judged as specified.

    Types and ranges (languages among python3/cpp17/java17, weights above zero) are
    checked when the body is parsed; this checks what spans several fields.
    """
    problems: list[FieldProblem] = []
    repeated_languages = sorted(lang for lang, n in Counter(spec.languages).items() if n > 1)
    if repeated_languages:
        problems.append(
            FieldProblem(
                (*CODING_LOC, "languages"), f"languages must differ; repeated: {repeated_languages}"
            )
        )
    if not spec.hidden_tests:
        problems.append(
            FieldProblem((*CODING_LOC, "hidden_tests"), "a coding question needs a hidden test")
        )
    names = [subtask.name for subtask in spec.subtasks]
    repeated_names = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated_names:
        problems.append(
            FieldProblem(
                (*CODING_LOC, "subtasks"), f"subtask names must differ; repeated: {repeated_names}"
            )
        )
    declared = set(names)
    for index, test in enumerate(spec.hidden_tests):
        where = (*CODING_LOC, "hidden_tests", index, "subtask")
        if test.subtask is None and declared:
            problems.append(
                FieldProblem(where, "with subtasks declared, every hidden test needs one")
            )
        elif test.subtask is not None and test.subtask not in declared:
            problems.append(
                FieldProblem(where, f"subtask {test.subtask!r} is not in subtasks {sorted(names)}")
            )
    used = {test.subtask for test in spec.hidden_tests}
    empty = [name for name in names if name not in used]
    if empty:
        problems.append(
            FieldProblem((*CODING_LOC, "subtasks"), f"subtasks without hidden tests: {empty}")
        )
    size = sum(len(t.input.encode()) + len(t.output.encode()) for t in spec.sample_tests) + sum(
        len(t.input.encode()) + len(t.output.encode()) for t in spec.hidden_tests
    )
    if size > MAX_CODING_TEST_BYTES:
        problems.append(
            FieldProblem(
                (*CODING_LOC, "hidden_tests"),
                f"tests take {size} bytes; at most {MAX_CODING_TEST_BYTES} are allowed",
            )
        )
    return problems
