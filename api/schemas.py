"""Request and response bodies of the admin API.

Request models forbid unknown fields, so a misspelt field is reported instead of being
silently ignored. Text that Postgres cannot store (NUL characters) and datetimes without
a timezone are refused here, as 422s, before any SQL runs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from streams.rules.scoring import QuestionKind

INT32_MAX = 2**31 - 1
# Far beyond any contest, and far enough below INT32_MAX that "next position" fits.
POSITION_MAX = 1_000_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. "\udfff" in the JSON
        raise ValueError(f"text is not valid Unicode at character {exc.start}") from exc
    return value


def _utc_in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+05:00 has no UTC equivalent
        raise ValueError("datetime is out of range") from exc
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"datetime must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    # Definitions carry Avro timestamp-millis: keep only what can be published exactly.
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _mcq_means_single(value: object) -> object:
    # The original product called single-answer questions "mcq".
    return QuestionKind.MCQ_SINGLE.value if value == "mcq" else value


Text = Annotated[str, AfterValidator(_storable_text)]
Name = Annotated[
    str,
    Field(min_length=1, max_length=200),
    AfterValidator(_storable_text),
    AfterValidator(_not_blank),
]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc_in_range)]
QuestionType = Annotated[
    QuestionKind,
    BeforeValidator(_mcq_means_single),
    Field(description='One of mcq_single, mcq_multi, subjective, coding; "mcq" means mcq_single.'),
]
Marks = Annotated[float, Field(allow_inf_nan=False, le=1e9)]
# A case-insensitive substring to look for (a name, an email address).
SearchText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable_text)]
ContestStatus = Literal["draft", "published"]

T = TypeVar("T")
V = TypeVar("V")


class RequestBody(BaseModel):
    """A request body: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class PatchBody(RequestBody):
    """A PATCH body: a field left out keeps its value; an explicit null is an error."""

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep it")
        return value


def patched(value: V | None, current: V) -> V:
    """A PATCHed field's new value, or its current one when the field was left out."""
    return current if value is None else value


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total across all pages."""

    items: list[T]
    total: int
    limit: int
    offset: int


# --- auth ---------------------------------------------------------------------------


class TokenRequest(RequestBody):
    """An admin's credentials."""

    username: Name
    # Capped so that a huge body cannot make argon2 hash megabytes.
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class TokenResponse(BaseModel):
    """A bearer token for the `Authorization` header of admin routes, and a refresh
    token that buys the next one without the password."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(
        description="Exchange at POST /api/v1/auth/refresh for new tokens; works once."
    )
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires.")


class RefreshRequest(RequestBody):
    """A refresh token from an earlier sign-in or refresh."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


# --- contests -----------------------------------------------------------------------

DurationMinutes = Annotated[int, Field(gt=0, le=INT32_MAX // 60)]
DurationSeconds = Annotated[int, Field(gt=0, le=INT32_MAX)]


class ContestCreate(RequestBody):
    """A new draft contest. Give the attempt duration in minutes or in seconds."""

    name: Name
    description: Annotated[Text, Field(max_length=20_000)] = ""
    start_at: UtcDatetime
    end_at: UtcDatetime
    duration_minutes: DurationMinutes | None = None
    duration_seconds: DurationSeconds | None = None


class ContestPatch(PatchBody):
    """Changes to a draft contest; fields left out keep their value."""

    name: Name | None = None
    description: Annotated[Text, Field(max_length=20_000)] | None = None
    start_at: UtcDatetime | None = None
    end_at: UtcDatetime | None = None
    duration_minutes: DurationMinutes | None = None
    duration_seconds: DurationSeconds | None = None


class ContestOut(BaseModel):
    """A contest as stored; times in UTC, the duration in seconds."""

    id: uuid.UUID
    name: str
    description: str
    start_at: datetime
    end_at: datetime
    duration_seconds: int
    status: ContestStatus
    published_at: datetime | None
    revision: int
    created_at: datetime
    updated_at: datetime


# --- questions ----------------------------------------------------------------------

OptionIndex = Annotated[int, Field(ge=0, le=INT32_MAX)]
Option = Annotated[Text, Field(min_length=1, max_length=5_000)]
Rubric = Annotated[Text, Field(max_length=100_000)]
TestData = Annotated[Text, Field(max_length=1_000_000)]
Language = Literal["python3", "cpp17", "java17"]


class SampleTest(RequestBody):
    """A test shown to candidates with the statement."""

    input: TestData
    output: TestData
    explanation: Annotated[Text, Field(max_length=10_000)] = ""


class HiddenTest(RequestBody):
    """A test run on submissions only; its weight is its share of the marks."""

    input: TestData
    output: TestData
    weight: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 1.0
    subtask: Name | None = Field(
        None, description="The subtask the test belongs to; one of `subtasks` by name."
    )


class Subtask(RequestBody):
    """A group of hidden tests scored all-or-nothing: its tests' weight counts only when
    every test of the group passes."""

    name: Name
    description: Annotated[Text, Field(max_length=10_000)] = ""


class ExactComparison(RequestBody):
    """Output must equal the expected output byte for byte."""

    mode: Literal["exact"]


class TrimComparison(RequestBody):
    """Trailing whitespace on each line and trailing blank lines are ignored."""

    mode: Literal["trim"]


class TokensComparison(RequestBody):
    """Outputs are compared as sequences of whitespace-separated tokens."""

    mode: Literal["tokens"]


class FloatComparison(RequestBody):
    """Tokens are compared; numeric tokens match within `abs_tol` or `rel_tol`."""

    mode: Literal["float"]
    abs_tol: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] = 1e-6
    rel_tol: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 1e-6


Comparison = Annotated[
    ExactComparison | TrimComparison | TokensComparison | FloatComparison,
    Field(discriminator="mode"),
]


class CodingSpec(RequestBody):
    """What judging a coding question needs; stored in the question's `details`."""

    statement: Annotated[Text, Field(max_length=200_000)] | None = Field(
        None, description="The full problem statement; the question text when left out."
    )
    languages: Annotated[list[Language], Field(min_length=1, max_length=3)]
    time_limit_ms: Annotated[int, Field(ge=100, le=60_000)] = 2_000
    memory_limit_mb: Annotated[int, Field(ge=16, le=4_096)] = 256
    sample_tests: Annotated[list[SampleTest], Field(max_length=50)] = []
    hidden_tests: Annotated[list[HiddenTest], Field(max_length=1_000)]
    subtasks: Annotated[list[Subtask], Field(max_length=100)] = []
    comparison: Comparison = Field(
        default_factory=lambda: TrimComparison(mode="trim"),
        description="How output is compared; trim when left out.",
    )


class CodingTestsPatch(PatchBody):
    """Corrected tests of a coding question; fields left out keep their value."""

    sample_tests: Annotated[list[SampleTest], Field(max_length=50)] | None = None
    hidden_tests: Annotated[list[HiddenTest], Field(max_length=1_000)] | None = None
    subtasks: Annotated[list[Subtask], Field(max_length=100)] | None = None
    comparison: Comparison | None = None


class QuestionContent(RequestBody):
    """The question text and, for MCQs, the options and the answer key.

    A single-answer key is `correct_answer` (an option index); a multi-select key is
    `correct_answers` (a list of option indices). Either field is accepted for either
    kind as long as the key has the right number of answers. A subjective question may
    carry a `rubric` for its graders; a coding question needs `coding`.
    """

    question: Annotated[Text, Field(min_length=1, max_length=100_000)]
    options: Annotated[list[Option], Field(max_length=100)] = []
    correct_answer: OptionIndex | None = None
    correct_answers: Annotated[list[OptionIndex], Field(max_length=100)] | None = None
    rubric: Rubric | None = Field(None, description="Subjective questions: how to award marks.")
    coding: CodingSpec | None = Field(None, description="Coding questions: how to judge them.")


class QuestionScoring(RequestBody):
    """Marks for a correct answer, deducted for a wrong one, and partial credit."""

    max_marks: Annotated[Marks, Field(gt=0)]
    negative_marks: Annotated[Marks, Field(ge=0)] = 0.0
    partial_credit: bool = False


class QuestionCreate(RequestBody):
    """A new question of a draft contest."""

    contest_id: uuid.UUID
    type: QuestionType
    content: QuestionContent
    scoring: QuestionScoring
    position: Annotated[int, Field(ge=0, le=POSITION_MAX)] | None = Field(
        None, description="Order within the contest; appended after the last when left out."
    )


class QuestionContentPatch(PatchBody):
    """Changes to the question text, options, answer key, rubric or coding details
    (`coding` replaces the whole object)."""

    question: Annotated[Text, Field(min_length=1, max_length=100_000)] | None = None
    options: Annotated[list[Option], Field(max_length=100)] | None = None
    correct_answer: OptionIndex | None = None
    correct_answers: Annotated[list[OptionIndex], Field(max_length=100)] | None = None
    rubric: Rubric | None = None
    coding: CodingSpec | None = None


class QuestionScoringPatch(PatchBody):
    """Changes to the scoring."""

    max_marks: Annotated[Marks, Field(gt=0)] | None = None
    negative_marks: Annotated[Marks, Field(ge=0)] | None = None
    partial_credit: bool | None = None


class QuestionPatch(PatchBody):
    """Changes to a question of a draft contest; fields left out keep their value.

    Changing the type drops what only the old type had: the rubric of a subjective
    question, the coding details of a coding question.
    """

    type: QuestionType | None = None
    content: QuestionContentPatch | None = None
    scoring: QuestionScoringPatch | None = None
    position: Annotated[int, Field(ge=0, le=POSITION_MAX)] | None = None


class QuestionContentOut(BaseModel):
    """The question text, its options and answer key (option indices), the rubric of
    a subjective question and the coding details of a coding question."""

    question: str
    options: list[str]
    correct_answers: list[int]
    rubric: str | None = None
    coding: CodingSpec | None = None


class QuestionScoringOut(BaseModel):
    """How the question is scored."""

    max_marks: float
    negative_marks: float
    partial_credit: bool


class QuestionOut(BaseModel):
    """A question with its answer key."""

    id: uuid.UUID
    contest_id: uuid.UUID
    type: QuestionKind
    content: QuestionContentOut
    scoring: QuestionScoringOut
    position: int
    revision: int
    external_id: str | None = Field(
        None, description="The bulk upload's external_id this question's id derives from."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> QuestionOut:
        """The API shape of a `questions` row."""
        details = row.get("details")
        return cls(
            id=row["id"],
            contest_id=row["contest_id"],
            type=QuestionKind(row["kind"]),
            content=QuestionContentOut(
                question=row["prompt"],
                options=row["options"],
                correct_answers=row["correct_options"],
                rubric=row.get("rubric"),
                coding=CodingSpec.model_validate(details) if details is not None else None,
            ),
            scoring=QuestionScoringOut(
                max_marks=row["max_marks"],
                negative_marks=row["negative_marks"],
                partial_credit=row["partial_credit"],
            ),
            position=row["position"],
            revision=row["revision"],
            external_id=row.get("external_id"),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


class ContestDetail(ContestOut):
    """A contest with its questions in position order, answer keys included."""

    questions: list[QuestionOut]


class QuestionRegrade(RequestBody):
    """A correction to a published question: its answer key or, for a coding question,
    its tests and comparison. Finished attempts are then graded again."""

    correct_answer: OptionIndex | None = None
    correct_answers: Annotated[list[OptionIndex], Field(max_length=100)] | None = None
    coding: CodingTestsPatch | None = None
    reason: Annotated[Text, Field(max_length=2_000)] = ""


class QuestionRegradeOut(BaseModel):
    """The corrected question and what was sent."""

    question: QuestionOut
    revision_changed: bool = Field(
        description="False when the correction equals the current key: nothing changes."
    )
    regrades_requested: int = Field(description="RegradeRequested records sent.")


# --- bulk upload --------------------------------------------------------------------


class UploadedQuestion(RequestBody):
    """One question of a bulk upload: a create body without `contest_id` (that is a
    query parameter), with an optional `external_id` that names it across uploads."""

    external_id: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    type: QuestionType
    content: QuestionContent
    scoring: QuestionScoring
    position: Annotated[int, Field(ge=0, le=POSITION_MAX)] | None = None


class UploadRowError(BaseModel):
    """Why one row of an upload was not imported. `row` is None for a problem with the
    whole file; `field` is None when no single field is at fault."""

    row: int | None
    field: str | None
    reason: str


class UploadedRow(BaseModel):
    """What happened to one good row."""

    row: int
    question_id: uuid.UUID
    outcome: Literal["created", "updated", "unchanged"]


class UploadReport(BaseModel):
    """The outcome of a bulk upload, row by row."""

    contest_id: uuid.UUID
    rows: int = Field(description="Data rows in the file.")
    created: int
    updated: int
    unchanged: int
    rejected: int
    questions: list[UploadedRow]
    errors: list[UploadRowError]


class UploadRejected(UploadReport):
    """An upload that imported nothing, with every problem found."""

    detail: str


# --- results ------------------------------------------------------------------------


class LeaderboardEntry(BaseModel):
    """One ranked attempt; equal standings share a rank (1, 2, 2, 4)."""

    rank: int
    attempt_id: uuid.UUID
    participant_name: str
    total_score: float
    score_changed_at: datetime
    started_at: datetime


class AttemptResult(BaseModel):
    """One attempt's outcome; scores are None until the attempt is graded."""

    attempt_id: uuid.UUID
    participant_email: str
    participant_name: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    total_score: float | None
    max_score: float | None
    late_saves: int | None
    counted_saves: int | None


class ResponseOut(BaseModel):
    """The current grade of one answer."""

    response_id: uuid.UUID = Field(
        description="Stable id of the (attempt, question) pair; grade it with POST"
        " /api/v1/admin/grading/responses/{response_id}/."
    )
    question_id: uuid.UUID
    verdict: str
    score: float
    max_score: float
    selected_options: list[int] | None
    text: str | None
    saved_at: datetime | None
    grader_version: str


class AttemptDetail(BaseModel):
    """An attempt with the current grade of each of its responses."""

    attempt_id: uuid.UUID
    contest_id: uuid.UUID
    participant_id: uuid.UUID
    participant_email: str
    participant_name: str
    status: str
    started_at: datetime
    deadline: datetime | None
    finished_at: datetime | None
    total_score: float | None
    max_score: float | None
    score_changed_at: datetime | None
    counted_saves: int | None
    late_saves: int | None
    grader_version: str | None
    graded_at: datetime | None
    responses: list[ResponseOut]


# --- participants and monitoring ----------------------------------------------------

AttemptStatusName = Literal["active", "submitted", "expired", "invalidated"]


class ParticipantOut(BaseModel):
    """A candidate, one per email address, with how many attempts they started."""

    id: uuid.UUID
    email: str
    name: str
    created_at: datetime
    attempts: int


class AttemptLive(BaseModel):
    """An attempt as an invigilator watches it."""

    attempt_id: uuid.UUID
    contest_id: uuid.UUID
    participant_id: uuid.UUID
    participant_email: str
    participant_name: str
    status: str = Field(description="active, submitted, expired or invalidated.")
    connection: Literal["connected", "idle", "disconnected"] | None = Field(
        None, description="From heartbeats, for an active attempt; null before any beat."
    )
    started_at: datetime
    deadline: datetime | None = Field(
        description="start + duration + extensions, capped by the contest's end."
    )
    finished_at: datetime | None
    time_left_seconds: int | None = Field(
        description="Seconds to the deadline for an active attempt (0 once past); null"
        " for a finished one."
    )
    extension_seconds: int = Field(description="Extra time granted by admins.")
    answers_saved: int = Field(description="Saves the stream counted.")
    total_score: float | None
    max_score: float | None
    risk_score: int | None = Field(None, description="Proctoring risk, 0 to 100.")
    proctoring_flags: list[str] = Field(
        default_factory=list, description="Why the risk score is what it is."
    )


class ExtensionRequest(RequestBody):
    """Extra time for one attempt, and why."""

    # Strict: `true` or "5" is a client bug, not a number of minutes to grant.
    minutes: Annotated[int, Field(gt=0, le=INT32_MAX // 60, strict=True)]
    reason: Annotated[Text, Field(min_length=1, max_length=2_000)]


class ExtensionOut(BaseModel):
    """A granted extension and the attempt's deadline with it."""

    extension_id: uuid.UUID = Field(description="Also the TimeExtended record's event_id.")
    attempt_id: uuid.UUID
    contest_id: uuid.UUID
    extra_seconds: int
    total_extension_seconds: int
    previous_deadline: datetime
    deadline: datetime
    reason: str
    admin: str


class InvalidationRequest(RequestBody):
    """Why the attempt is invalidated."""

    reason: Annotated[Text, Field(min_length=1, max_length=2_000)]


class InvalidationOut(BaseModel):
    """A sent invalidation; the stream takes the attempt off the leaderboard."""

    attempt_id: uuid.UUID
    contest_id: uuid.UUID
    event_id: uuid.UUID
    reason: str
    admin: str
    invalidated_at: datetime


# --- grading ------------------------------------------------------------------------


class PendingResponse(BaseModel):
    """A response waiting for a grader, with what grading it needs."""

    response_id: uuid.UUID
    attempt_id: uuid.UUID
    contest_id: uuid.UUID
    question_id: uuid.UUID
    question_kind: str
    prompt: str
    rubric: str | None
    answer_text: str | None
    language: str | None
    max_marks: float
    saved_at: datetime | None
    finished_at: datetime | None


class ManualGradeRequest(RequestBody):
    """A grader's score for one response, between 0 and the question's marks."""

    score: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
    comment: Annotated[Text, Field(max_length=20_000)] = ""


class ManualGradeOut(BaseModel):
    """A sent grade; the stream re-scores the attempt with it."""

    response_id: uuid.UUID
    event_id: uuid.UUID
    attempt_id: uuid.UUID
    contest_id: uuid.UUID
    question_id: uuid.UUID
    score: float
    max_score: float
    comment: str
    grader: str
    graded_at: datetime


class RegradeRequest(RequestBody):
    """Why the attempt is graded again."""

    reason: Annotated[Text, Field(max_length=2_000)] = ""


class AttemptRegradeOut(BaseModel):
    """A sent regrade request."""

    attempt_id: uuid.UUID
    contest_id: uuid.UUID
    event_id: uuid.UUID
    reason: str
    admin: str
