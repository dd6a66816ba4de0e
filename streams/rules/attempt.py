"""The attempt state machine: start, save, extend, finish, and grading on finish.

The state is a plain msgspec struct so a stream table can hold it as JSON bytes. Every
transition is a pure function of (state, event) returning the new state and what to
emit; replaying an event that was already applied changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec

from streams.rules.scoring import (
    GRADER_VERSION,
    Grade,
    McqKey,
    QuestionKind,
    Verdict,
    grade_mcq,
)
from streams.rules.timing import attempt_deadline, is_on_time

CODE_RUN_NAMESPACE = uuid.UUID("9a4f3c1e-7b2d-4e8f-a6c5-3d1b0e9f8a72")


# Client sequence numbers: far beyond any session, and within a signed 64-bit column.
MAX_CLIENT_SEQ = 2**62


class AttemptStatus(StrEnum):
    ACTIVE = "active"
    SUBMITTED = "submitted"
    EXPIRED = "expired"
    INVALIDATED = "invalidated"


class SaveStatus(StrEnum):
    COUNTED = "counted"
    SUPERSEDED = "superseded"
    LATE = "late"
    AFTER_SUBMIT = "after_submit"


class SavedAnswer(msgspec.Struct, frozen=True):
    event_id: str
    client_seq: int
    saved_at: datetime
    selected_options: list[int] | None = None
    text: str | None = None
    language: str | None = None


class ManualGrade(msgspec.Struct, frozen=True):
    event_id: str
    score: float
    comment: str
    grader: str
    graded_at: datetime


class CodeResult(msgspec.Struct, frozen=True):
    """The outcome of running one saved program on its question's hidden tests."""

    request_id: str  # code_request_id of the program and test revision it ran
    verdict: str
    score: float


class AttemptState(msgspec.Struct):
    attempt_id: str
    contest_id: str
    participant_email: str
    participant_name: str
    started_at: datetime
    duration_seconds: int
    contest_end: datetime
    extension_seconds: int = 0
    status: AttemptStatus = AttemptStatus.ACTIVE
    finished_at: datetime | None = None
    answers: dict[str, SavedAnswer] = msgspec.field(default_factory=dict)
    counted_saves: int = 0
    late_save_ids: list[str] = msgspec.field(default_factory=list)
    invalidation_reason: str | None = None
    applied_extensions: list[str] = msgspec.field(default_factory=list)
    manual_grades: dict[str, ManualGrade] = msgspec.field(default_factory=dict)
    code_results: dict[str, CodeResult] = msgspec.field(default_factory=dict)
    # When each distinct grading (by its basis) first happened, so grading the same
    # inputs again reproduces the same record, time included.
    graded_at_by_basis: dict[str, datetime] = msgspec.field(default_factory=dict)

    @property
    def deadline(self) -> datetime:
        return attempt_deadline(
            self.started_at, self.duration_seconds, self.extension_seconds, self.contest_end
        )

    @property
    def late_saves(self) -> int:
        return len(self.late_save_ids)

    @property
    def is_finished(self) -> bool:
        return self.status is not AttemptStatus.ACTIVE


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AttemptState)


def dump_state(state: AttemptState) -> bytes:
    return _encoder.encode(state)


def load_state(data: bytes) -> AttemptState:
    return _decoder.decode(data)


@dataclass(frozen=True)
class ContestTiming:
    """What the state machine needs from a contest's definition."""

    duration_seconds: int
    end_at: datetime


def start_attempt(
    current: AttemptState | None,
    *,
    attempt_id: str,
    contest_id: str,
    participant_email: str,
    participant_name: str,
    server_ts: datetime,
    contest: ContestTiming,
) -> AttemptState:
    """A new attempt starts its clock at the server time; a repeated start resumes it."""
    if current is not None:
        return current
    return AttemptState(
        attempt_id=attempt_id,
        contest_id=contest_id,
        participant_email=participant_email,
        participant_name=participant_name,
        started_at=server_ts,
        duration_seconds=contest.duration_seconds,
        contest_end=contest.end_at,
    )


def record_save(
    state: AttemptState, question_id: str, answer: SavedAnswer, grace_seconds: int
) -> SaveStatus:
    """Apply one save: the highest client sequence per question wins; late saves are kept
    out of the answer set. Mutates `state` and returns the decision for this save."""
    previous = state.answers.get(question_id)
    if previous is not None and previous.event_id == answer.event_id:
        return SaveStatus.COUNTED  # the same save delivered again
    if not is_on_time(answer.saved_at, state.deadline, grace_seconds):
        if answer.event_id not in state.late_save_ids:  # kept once however often delivered
            state.late_save_ids.append(answer.event_id)
        return SaveStatus.LATE
    if state.is_finished:
        return SaveStatus.AFTER_SUBMIT
    if previous is not None and previous.client_seq > answer.client_seq:
        return SaveStatus.SUPERSEDED  # equal sequence numbers: the later save wins
    state.answers[question_id] = answer
    state.counted_saves += 1
    return SaveStatus.COUNTED


def extend_attempt(state: AttemptState, event_id: str, extra_seconds: int) -> bool:
    """Add time once per extension event; a finished attempt is not reopened."""
    if state.is_finished or event_id in state.applied_extensions:
        return False
    state.extension_seconds += extra_seconds
    state.applied_extensions.append(event_id)
    return True


def submit_attempt(state: AttemptState, server_ts: datetime, grace_seconds: int) -> bool:
    """Finish on the candidate's submit. A submit past deadline + grace does not count:
    the attempt expires at its deadline instead. Returns True when the state changed."""
    if state.is_finished:
        return False
    if is_on_time(server_ts, state.deadline, grace_seconds):
        state.status = AttemptStatus.SUBMITTED
        state.finished_at = server_ts
    else:
        state.status = AttemptStatus.EXPIRED
        state.finished_at = state.deadline
    return True


def expire_attempt(state: AttemptState, checked_at: datetime, grace_seconds: int) -> bool:
    """Auto-submit at the deadline; the finish time is the deadline, not the sweep time.
    An expiry checked before an extension moved the deadline does nothing."""
    if state.is_finished or is_on_time(checked_at, state.deadline, grace_seconds):
        return False
    state.status = AttemptStatus.EXPIRED
    state.finished_at = state.deadline
    return True


def record_manual_grade(state: AttemptState, question_id: str, grade: ManualGrade) -> bool:
    """Keep a grader's score for one response; the latest grading by server time wins."""
    current = state.manual_grades.get(question_id)
    if current is not None and (
        current.event_id == grade.event_id or current.graded_at > grade.graded_at
    ):
        return False
    state.manual_grades[question_id] = grade
    return True


def code_request_id(attempt_id: str, question_id: str, answer_event_id: str, revision: int) -> str:
    """One grading run per saved program and test revision, however often it is asked."""
    return str(
        uuid.uuid5(CODE_RUN_NAMESPACE, f"{attempt_id}/{question_id}/{answer_event_id}/r{revision}")
    )


def record_code_result(state: AttemptState, question_id: str, result: CodeResult) -> bool:
    """Keep a grading run's outcome; a repeat of the same run changes nothing."""
    if state.code_results.get(question_id) == result:
        return False
    state.code_results[question_id] = result
    return True


def _matching_code_result(
    state: AttemptState, question: QuestionKey, answer: SavedAnswer | None
) -> CodeResult | None:
    result = state.code_results.get(question.question_id)
    if result is None or answer is None:
        return None
    wanted = code_request_id(
        state.attempt_id, question.question_id, answer.event_id, question.revision
    )
    return result if result.request_id == wanted else None  # else: an older program or tests


def code_runs_needed(
    state: AttemptState, questions: Mapping[str, QuestionKey]
) -> list[tuple[QuestionKey, SavedAnswer]]:
    """The coding answers of a finished attempt still waiting for a grading run."""
    return [
        (question, answer)
        for question in questions.values()
        if question.kind is QuestionKind.CODING
        and (answer := state.answers.get(question.question_id)) is not None
        and answer.text
        and _matching_code_result(state, question, answer) is None
    ]


def invalidate_attempt(state: AttemptState, reason: str, server_ts: datetime) -> bool:
    if state.status is AttemptStatus.INVALIDATED:
        return False
    if state.finished_at is None:
        state.finished_at = server_ts
    state.status = AttemptStatus.INVALIDATED
    state.invalidation_reason = reason
    return True


@dataclass(frozen=True)
class QuestionKey:
    """A question's grading data, as the definitions table holds it."""

    question_id: str
    kind: QuestionKind
    option_count: int
    correct: frozenset[int]
    max_marks: float
    negative_marks: float
    partial_credit: bool
    revision: int = 1


@dataclass(frozen=True)
class ResponseGrade:
    question_id: str
    verdict: str
    score: float
    max_score: float
    answer: SavedAnswer | None
    basis: str  # what this grade depends on besides the answer: key revision, manual grade


@dataclass(frozen=True)
class AttemptGrade:
    responses: list[ResponseGrade]
    total_score: float
    max_score: float
    score_changed_at: datetime
    basis: str  # identifies this grading: the same inputs give the same basis
    grader_version: str = GRADER_VERSION


def grade_question(
    question: QuestionKey,
    answer: SavedAnswer | None,
    manual: ManualGrade | None = None,
    code: CodeResult | None = None,
) -> Grade:
    """Grade one response: a grader's score when there is one, MCQ at once, code by its
    run on the hidden tests, subjective answers wait for a grader."""
    if manual is not None:
        return Grade(Verdict.GRADED, round(min(max(manual.score, 0.0), question.max_marks), 6))
    if question.kind in (QuestionKind.MCQ_SINGLE, QuestionKind.MCQ_MULTI):
        key = McqKey(
            kind=question.kind,
            option_count=question.option_count,
            correct=question.correct,
            max_marks=question.max_marks,
            negative_marks=question.negative_marks,
            partial_credit=question.partial_credit,
        )
        return grade_mcq(key, answer.selected_options if answer else None)
    if answer is None or (question.kind is QuestionKind.CODING and not answer.text):
        return Grade(Verdict.UNANSWERED, 0.0)
    if question.kind is QuestionKind.CODING:
        if code is None:
            return Grade(Verdict.PENDING_EXECUTION, 0.0)
        return Grade(code.verdict, round(min(max(code.score, 0.0), question.max_marks), 6))
    return Grade(Verdict.PENDING_MANUAL, 0.0)


def grade_attempt(state: AttemptState, questions: Mapping[str, QuestionKey]) -> AttemptGrade:
    """Grade every question of the contest against the counted answers.

    The score's last change is the save time of the latest answer that earned marks; an
    attempt that earned nothing ranks by its start.
    """
    responses: list[ResponseGrade] = []
    for question_id, question in questions.items():
        answer = state.answers.get(question_id)
        manual = state.manual_grades.get(question_id)
        code = _matching_code_result(state, question, answer)
        grade = grade_question(question, answer, manual, code)
        basis = (
            f"r{question.revision}"
            + (f"/m{manual.event_id}" if manual else "")
            + (f"/c{code.request_id}" if code else "")
        )
        responses.append(
            ResponseGrade(
                question_id, grade.verdict, grade.score, question.max_marks, answer, basis
            )
        )
    scoring_times = [r.answer.saved_at for r in responses if r.answer and r.score > 0]
    finished = state.finished_at.isoformat() if state.finished_at else ""
    digest = hashlib.sha256(
        "|".join(
            [state.status.value, finished, GRADER_VERSION]
            + [f"{r.question_id}:{r.basis}" for r in responses]
        ).encode()
    ).hexdigest()[:32]
    return AttemptGrade(
        responses=responses,
        total_score=round(sum(r.score for r in responses), 6),
        max_score=round(sum(q.max_marks for q in questions.values()), 6),
        score_changed_at=max(scoring_times, default=state.started_at),
        basis=digest,
    )
