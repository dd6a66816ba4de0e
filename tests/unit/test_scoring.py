"""MCQ scoring: single and multi-select, partial credit, negative marks, floor at zero."""

from __future__ import annotations

import pytest

from streams.rules.scoring import (
    Grade,
    McqKey,
    QuestionKind,
    Verdict,
    answer_problem,
    answer_shape_error,
    grade_mcq,
)

SINGLE = McqKey(QuestionKind.MCQ_SINGLE, 4, frozenset({2}), max_marks=4, negative_marks=1)
MULTI_PARTIAL = McqKey(
    QuestionKind.MCQ_MULTI,
    5,
    frozenset({0, 2, 3}),
    max_marks=6,
    negative_marks=1,
    partial_credit=True,
)
MULTI_ALL_OR_NOTHING = McqKey(QuestionKind.MCQ_MULTI, 5, frozenset({0, 2}), max_marks=6)


@pytest.mark.parametrize(
    ("key", "selected", "expected"),
    [
        (SINGLE, [2], Grade(Verdict.CORRECT, 4)),
        (SINGLE, [1], Grade(Verdict.WRONG, 0)),  # -1 floored at zero for the question
        (SINGLE, None, Grade(Verdict.UNANSWERED, 0)),
        (SINGLE, [], Grade(Verdict.UNANSWERED, 0)),
        (MULTI_PARTIAL, [0, 2, 3], Grade(Verdict.CORRECT, 6)),
        (MULTI_PARTIAL, [3, 0, 2], Grade(Verdict.CORRECT, 6)),  # order does not matter
        (MULTI_PARTIAL, [0, 2], Grade(Verdict.PARTIAL, 4)),
        (MULTI_PARTIAL, [0, 2, 1], Grade(Verdict.PARTIAL, 3)),  # 4 - 1 for the wrong pick
        (MULTI_PARTIAL, [0, 1, 4], Grade(Verdict.WRONG, 0)),  # 2 - 2 = 0
        (MULTI_PARTIAL, [1, 4], Grade(Verdict.WRONG, 0)),  # -2 floored
        (MULTI_ALL_OR_NOTHING, [0, 2], Grade(Verdict.CORRECT, 6)),
        (MULTI_ALL_OR_NOTHING, [0], Grade(Verdict.WRONG, 0)),
    ],
)
def test_grade_mcq(key: McqKey, selected: list[int] | None, expected: Grade) -> None:
    assert grade_mcq(key, selected) == expected


def test_partial_credit_keeps_fractions_exact_enough() -> None:
    key = McqKey(QuestionKind.MCQ_MULTI, 4, frozenset({0, 1, 2}), max_marks=1, partial_credit=True)
    assert grade_mcq(key, [0]).score == pytest.approx(1 / 3, abs=1e-6)


@pytest.mark.parametrize(
    ("kind", "selected", "problem"),
    [
        (QuestionKind.MCQ_SINGLE, [0, 1], "at most one"),
        (QuestionKind.MCQ_MULTI, [1, 1], "repeated"),
        (QuestionKind.MCQ_MULTI, [4], "outside 0..3"),
        (QuestionKind.SUBJECTIVE, [0], "only for MCQ"),
    ],
)
def test_answer_shape_errors(kind: QuestionKind, selected: list[int], problem: str) -> None:
    error = answer_shape_error(kind, 4, selected)
    assert error is not None and problem in error


def test_answer_shape_accepts_valid_answers() -> None:
    assert answer_shape_error(QuestionKind.MCQ_SINGLE, 4, [3]) is None
    assert answer_shape_error(QuestionKind.MCQ_MULTI, 4, [0, 3]) is None
    assert answer_shape_error(QuestionKind.MCQ_MULTI, 4, None) is None


def test_answer_problems_name_their_field() -> None:
    coding, mcq = QuestionKind.CODING, QuestionKind.MCQ_SINGLE
    assert answer_problem(coding, 0, ["python3"], None, "print(1)", "python3") is None
    assert answer_problem(coding, 0, ["python3"], None, "x", "cobol") == (
        "language",
        "language must be one of: python3",
    )
    assert answer_problem(mcq, 4, [], None, "a", None) == (
        "text",
        "an MCQ answer is selected_options only",
    )
    assert answer_problem(QuestionKind.SUBJECTIVE, 0, [], None, "a\x00", None) == (
        "text",
        "text contains a NUL character",
    )
    assert answer_problem(mcq, 4, [], [4], None, None) == (
        "selected_options",
        "selected_options [4] outside 0..3",
    )


def test_a_language_belongs_to_coding_answers_only() -> None:
    assert answer_problem(QuestionKind.SUBJECTIVE, 0, [], None, "essay", "klingon") == (
        "language",
        "language is only for coding questions",
    )
