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
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
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
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable_text)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc_in_range)]
QuestionType = Annotated[
    QuestionKind,
    BeforeValidator(_mcq_means_single),
    Field(description='One of mcq_single, mcq_multi, subjective, coding; "mcq" means mcq_single.'),
]
Marks = Annotated[float, Field(allow_inf_nan=False, le=1e9)]
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
    """A bearer token for the `Authorization` header of admin routes."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


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


class QuestionContent(RequestBody):
    """The question text and, for MCQs, the options and the answer key.

    A single-answer key is `correct_answer` (an option index); a multi-select key is
    `correct_answers` (a list of option indices). Either field is accepted for either
    kind as long as the key has the right number of answers.
    """

    question: Annotated[Text, Field(min_length=1, max_length=100_000)]
    options: Annotated[list[Option], Field(max_length=100)] = []
    correct_answer: OptionIndex | None = None
    correct_answers: Annotated[list[OptionIndex], Field(max_length=100)] | None = None


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
    position: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = Field(
        None, description="Order within the contest; appended after the last when left out."
    )


class QuestionContentPatch(PatchBody):
    """Changes to the question text, options or answer key."""

    question: Annotated[Text, Field(min_length=1, max_length=100_000)] | None = None
    options: Annotated[list[Option], Field(max_length=100)] | None = None
    correct_answer: OptionIndex | None = None
    correct_answers: Annotated[list[OptionIndex], Field(max_length=100)] | None = None


class QuestionScoringPatch(PatchBody):
    """Changes to the scoring."""

    max_marks: Annotated[Marks, Field(gt=0)] | None = None
    negative_marks: Annotated[Marks, Field(ge=0)] | None = None
    partial_credit: bool | None = None


class QuestionPatch(PatchBody):
    """Changes to a question of a draft contest; fields left out keep their value."""

    type: QuestionType | None = None
    content: QuestionContentPatch | None = None
    scoring: QuestionScoringPatch | None = None
    position: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None


class QuestionContentOut(BaseModel):
    """The question text, its options and its answer key (option indices)."""

    question: str
    options: list[str]
    correct_answers: list[int]


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
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> QuestionOut:
        """The API shape of a `questions` row."""
        return cls(
            id=row["id"],
            contest_id=row["contest_id"],
            type=QuestionKind(row["kind"]),
            content=QuestionContentOut(
                question=row["prompt"],
                options=row["options"],
                correct_answers=row["correct_options"],
            ),
            scoring=QuestionScoringOut(
                max_marks=row["max_marks"],
                negative_marks=row["negative_marks"],
                partial_credit=row["partial_credit"],
            ),
            position=row["position"],
            revision=row["revision"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


class ContestDetail(ContestOut):
    """A contest with its questions in position order, answer keys included."""

    questions: list[QuestionOut]


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
