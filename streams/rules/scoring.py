"""MCQ scoring: single answer and multi-select, partial credit and negative marks.

A question's score is floored at zero: negative marks take credit away within the
question (a wrong pick in a multi-select, a wrong single answer) and never take marks
from other questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

GRADER_VERSION = "mcq-1"
SCORE_DIGITS = 6


class QuestionKind(StrEnum):
    MCQ_SINGLE = "mcq_single"
    MCQ_MULTI = "mcq_multi"
    CODING = "coding"
    SUBJECTIVE = "subjective"


class Verdict(StrEnum):
    CORRECT = "correct"
    PARTIAL = "partial"
    WRONG = "wrong"
    UNANSWERED = "unanswered"
    PENDING_MANUAL = "pending_manual"
    GRADED = "graded"  # scored by a grader
    PENDING_EXECUTION = "pending_execution"  # code waiting for its run on the hidden tests


@dataclass(frozen=True)
class McqKey:
    """What grading an MCQ needs from its definition."""

    kind: QuestionKind
    option_count: int
    correct: frozenset[int]
    max_marks: float
    negative_marks: float = 0.0
    partial_credit: bool = False


@dataclass(frozen=True)
class Grade:
    verdict: str  # a Verdict, or a code run's verdict (AC, WA, TLE, …)
    score: float


def answer_shape_error(
    kind: QuestionKind, option_count: int, selected: Sequence[int] | None
) -> str | None:
    """Why `selected` cannot be an answer to this question, or None when it can."""
    if kind not in (QuestionKind.MCQ_SINGLE, QuestionKind.MCQ_MULTI):
        return None if selected is None else "selected_options is only for MCQ questions"
    if selected is None:
        return None
    if len(set(selected)) != len(selected):
        return "selected_options has repeated options"
    if kind is QuestionKind.MCQ_SINGLE and len(selected) > 1:
        return "a single-answer question takes at most one option"
    out_of_range = [o for o in selected if not 0 <= o < option_count]
    if out_of_range:
        return f"selected_options {out_of_range} outside 0..{option_count - 1}"
    return None


def answer_problem(
    kind: QuestionKind,
    option_count: int,
    languages: Sequence[str],
    selected: Sequence[int] | None,
    text: str | None,
    language: str | None,
) -> tuple[str, str] | None:
    """(field, why) when a save cannot be an answer to this question, else None. Ingest
    refuses such a save; the stream dead-letters one that reached Kafka another way."""
    shape = answer_shape_error(kind, option_count, selected)
    if shape:
        return "selected_options", shape
    if kind in (QuestionKind.MCQ_SINGLE, QuestionKind.MCQ_MULTI) and (
        text is not None or language is not None
    ):
        return "text", "an MCQ answer is selected_options only"
    if text is not None and "\x00" in text:  # Postgres text cannot hold NUL
        return "text", "text contains a NUL character"
    if kind is QuestionKind.CODING and text is not None and language not in languages:
        return "language", f"language must be one of: {', '.join(languages)}"
    if kind is not QuestionKind.CODING and language is not None:
        return "language", "language is only for coding questions"
    return None


def grade_mcq(key: McqKey, selected: Sequence[int] | None) -> Grade:
    """Score one MCQ answer against its key."""
    chosen = frozenset(selected or ())
    if not chosen:
        return Grade(Verdict.UNANSWERED, 0.0)
    if chosen == key.correct:
        return Grade(Verdict.CORRECT, key.max_marks)
    wrong_picks = len(chosen - key.correct)
    if key.kind is QuestionKind.MCQ_MULTI and key.partial_credit and key.correct:
        right_picks = len(chosen & key.correct)
        raw = key.max_marks * right_picks / len(key.correct) - key.negative_marks * wrong_picks
    else:
        raw = -key.negative_marks
    score = round(max(0.0, raw), SCORE_DIGITS)
    return Grade(Verdict.PARTIAL if score > 0 else Verdict.WRONG, score)
