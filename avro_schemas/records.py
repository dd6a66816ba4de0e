"""The full name of every record on the wire, in one place."""

from enum import StrEnum


class Record(StrEnum):
    """Avro full names; each has at least one `schemas/<folder>/vN.avsc`."""

    ATTEMPT_STARTED = "io.elevate.attempt.AttemptStarted"
    ANSWER_SAVED = "io.elevate.attempt.AnswerSaved"
    ATTEMPT_SUBMITTED = "io.elevate.attempt.AttemptSubmitted"
    ATTEMPT_EXPIRED = "io.elevate.attempt.AttemptExpired"
    TIME_EXTENDED = "io.elevate.attempt.TimeExtended"
    ATTEMPT_INVALIDATED = "io.elevate.attempt.AttemptInvalidated"
    MANUAL_GRADE_GIVEN = "io.elevate.attempt.ManualGradeGiven"
    REGRADE_REQUESTED = "io.elevate.attempt.RegradeRequested"
    ATTEMPT_CLOCK = "io.elevate.attempt.AttemptClock"
    CODE_EXECUTION_REQUESTED = "io.elevate.execution.CodeExecutionRequested"
    CODE_EXECUTED = "io.elevate.execution.CodeExecuted"
    HEARTBEAT = "io.elevate.proctoring.Heartbeat"
    PROCTORING_FLAG = "io.elevate.proctoring.ProctoringFlag"
    CONTEST_DEFINITION = "io.elevate.definitions.ContestDefinition"
    QUESTION_DEFINITION = "io.elevate.definitions.QuestionDefinition"
    ANSWER_RECORDED = "io.elevate.grading.AnswerRecorded"
    RESPONSE_GRADED = "io.elevate.grading.ResponseGraded"
    ATTEMPT_SCORED = "io.elevate.grading.AttemptScored"
    LEADERBOARD_UPDATE = "io.elevate.leaderboard.LeaderboardUpdate"
