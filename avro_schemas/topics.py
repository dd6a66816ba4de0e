"""The topic registry: every topic's name, key, partition count and value records.

No topic name is written anywhere else. Names carry a prefix from the settings so that
several pipelines (or test runs) can share one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from avro_schemas.records import Record


@dataclass(frozen=True)
class TopicSpec:
    """What one topic holds and how it is keyed."""

    base_name: str
    key: str
    partitions: int
    records: tuple[Record, ...]
    compacted: bool = False
    retention_ms: int | None = None  # None: the broker's default
    max_message_bytes: int | None = None  # None: the broker's default (1 MB)

    def name(self, prefix: str) -> str:
        return f"{prefix}{self.base_name}"


ATTEMPT_EVENTS = TopicSpec(
    "attempt-events",
    key="attempt_id",
    partitions=6,
    records=(
        Record.ATTEMPT_STARTED,
        Record.ANSWER_SAVED,
        Record.ATTEMPT_SUBMITTED,
        Record.ATTEMPT_EXPIRED,
        Record.TIME_EXTENDED,
        Record.ATTEMPT_INVALIDATED,
        Record.MANUAL_GRADE_GIVEN,
        Record.REGRADE_REQUESTED,
        Record.CODE_EXECUTED,  # a grading run's outcome, ordered with the attempt's events
    ),
)
HEARTBEATS = TopicSpec("heartbeats", key="attempt_id", partitions=6, records=(Record.HEARTBEAT,))
DEFINITIONS = TopicSpec(
    "definitions",
    key="contest_id or question_id",
    partitions=1,  # one partition keeps a contest and its questions in publish order
    records=(Record.CONTEST_DEFINITION, Record.QUESTION_DEFINITION),
    compacted=True,
    # A coding question carries its tests (up to 16 MiB) besides its prompt and options.
    max_message_bytes=24 * 1024 * 1024,
)
GRADING_RESULTS = TopicSpec(
    "grading-results",
    key="attempt_id",
    partitions=6,
    records=(Record.ANSWER_RECORDED, Record.RESPONSE_GRADED, Record.ATTEMPT_SCORED),
)
SCORES_BY_CONTEST = TopicSpec(
    "scores-by-contest",
    key="contest_id",
    partitions=6,
    records=(Record.ATTEMPT_SCORED,),  # the leaderboard's input, grouped by contest
)
LEADERBOARD_UPDATES = TopicSpec(
    "leaderboard-updates", key="contest_id", partitions=6, records=(Record.LEADERBOARD_UPDATE,)
)
PROCTORING_FLAGS = TopicSpec(
    "proctoring-flags", key="attempt_id", partitions=6, records=(Record.PROCTORING_FLAG,)
)
CODE_RUNS = TopicSpec(
    "code-runs",
    key="attempt_id",
    partitions=6,
    records=(Record.CODE_EXECUTION_REQUESTED,),
)
CODE_RESULTS = TopicSpec(
    "code-results",
    key="attempt_id",
    partitions=6,
    records=(Record.CODE_EXECUTED,),
    retention_ms=24 * 3600 * 1000,  # a candidate's run results matter for a day at most
)
ATTEMPT_CLOCK = TopicSpec(
    "attempt-clock",
    key="attempt_id",
    partitions=6,
    records=(Record.ATTEMPT_CLOCK,),
    compacted=True,  # the latest clock of every attempt
)
DEAD_LETTERS = TopicSpec("dead-letters", key="source key", partitions=1, records=())

ALL_TOPICS = (
    ATTEMPT_EVENTS,
    HEARTBEATS,
    DEFINITIONS,
    GRADING_RESULTS,
    SCORES_BY_CONTEST,
    LEADERBOARD_UPDATES,
    ATTEMPT_CLOCK,
    PROCTORING_FLAGS,
    CODE_RUNS,
    CODE_RESULTS,
    DEAD_LETTERS,
)

# What a producer must be able to send, and a consumer to fetch, in one message.
LARGEST_MESSAGE_BYTES = max(spec.max_message_bytes or 1024 * 1024 for spec in ALL_TOPICS)
