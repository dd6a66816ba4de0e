"""The Faust application, its topics and the output helpers every agent shares.

Values travel as raw bytes: agents decode them with the Avro codec themselves, so a
message that does not decode is dead-lettered instead of stopping the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from avro_schemas.codec import DecodeError, encode
from avro_schemas.records import Record
from avro_schemas.topics import (
    ATTEMPT_CLOCK,
    ATTEMPT_EVENTS,
    CODE_RESULTS,
    CODE_RUNS,
    DEAD_LETTERS,
    GRADING_RESULTS,
    LEADERBOARD_UPDATES,
    SCORES_BY_CONTEST,
    TopicSpec,
)
from elevate.kafka import dead_letter_headers
from elevate.observability import DEAD_LETTERS as DEAD_LETTERS_COUNT
from elevate.observability import EVENTS_PRODUCED
from elevate.settings import get_settings
from streams.commits import StreamsApp
from streams.definitions import DefinitionsView, follow_definitions
from streams.gaps import GapReader, GapRepair, Handler

log = logging.getLogger(__name__)

settings = get_settings()
# Table state messages may exceed Kafka's 1 MB default (an attempt with many long
# answers); the producer and the changelog topics allow this much.
STATE_MESSAGE_BYTES = 32 * 1024 * 1024

app = StreamsApp(
    f"{settings.topic_prefix}streams",
    broker="kafka://" + settings.kafka_bootstrap.replace(",", ";"),
    store="memory://",
    autodiscover=False,
    key_serializer="raw",
    value_serializer="raw",
    topic_partitions=ATTEMPT_EVENTS.partitions,
    topic_replication_factor=1,
    producer_acks=-1,
    consumer_auto_offset_reset="earliest",
    table_standby_replicas=0,
    web_enabled=False,
    broker_commit_every=500,
    broker_commit_interval=1.0,
    # A worker killed without a goodbye holds its partitions until its session times
    # out; keep that short so a restarted worker resumes within seconds.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=3.0,
    consumer_group_instance_id=settings.streams_instance_id or None,
    producer_max_request_size=STATE_MESSAGE_BYTES,
    stream_wait_empty=False,
)


def faust_topic(spec: TopicSpec) -> faust.TopicT:
    return app.topic(
        spec.name(settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        partitions=spec.partitions,
        internal=False,
    )


attempt_events_topic = faust_topic(ATTEMPT_EVENTS)
grading_results_topic = faust_topic(GRADING_RESULTS)
leaderboard_topic = faust_topic(LEADERBOARD_UPDATES)
scores_by_contest_topic = faust_topic(SCORES_BY_CONTEST)
dead_letters_topic = faust_topic(DEAD_LETTERS)
attempt_clock_topic = faust_topic(ATTEMPT_CLOCK)
code_runs_topic = faust_topic(CODE_RUNS)
code_results_topic = faust_topic(CODE_RESULTS)

# Agents wait for the definitions inside each event's handler, never before they start
# iterating their stream: Faust drops the messages it fetches for a stream nobody
# iterates yet, so a worker restarted onto a backlog lost the first messages of each
# partition (a code run in flight at a crash never ran again).
definitions = DefinitionsView()


@app.task
async def _follow_definitions() -> None:
    await follow_definitions(settings, definitions)


def gap_repair(table_name: str, topic: faust.TopicT) -> GapRepair:
    """Gap repair for an agent on `topic`, with its table of the highest offset handled
    per partition (see streams.gaps)."""
    reached = app.Table(
        table_name, default=None, key_type=bytes, value_type=bytes, partitions=topic.partitions
    )
    return GapRepair(reached, GapReader(settings))


async def emit(topic: faust.TopicT, record: Record, key: str, value: dict[str, Any]) -> None:
    """Queue one output; Faust flushes the producer before it commits the input offset,
    so an input is never committed ahead of what it produced."""
    await topic.send(key=key.encode(), value=encode(record, value))
    EVENTS_PRODUCED.labels(topic.get_topic_name()).inc()


async def dead_letter_message(
    key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int, error: str
) -> None:
    """Keep an unprocessable message with the reason and its source position."""
    await dead_letters_topic.send(
        key=key,
        value=value,
        headers=dead_letter_headers(
            error=error, source_topic=topic, partition=partition, offset=offset, consumer="streams"
        ),
    )
    DEAD_LETTERS_COUNT.labels(topic).inc()
    log.warning("dead-lettered %s[%d]@%d: %s", topic, partition, offset, error)


MessageApplier = Callable[[bytes | None, bytes | None, str], Awaitable[None]]


def dead_lettering(what: str) -> Callable[[MessageApplier], Handler]:
    """Make `apply(key, value, topic)` a gap-repair handler that dead-letters, with the
    reason, a message it cannot apply (undecodable, a field missing or wrong) or that
    fails unexpectedly: one bad message never stops the stream or vanishes."""

    def wrap(apply: MessageApplier) -> Handler:
        async def handle(
            key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int
        ) -> None:
            try:
                await apply(key, value, topic)
            except (DecodeError, KeyError, ValueError, TypeError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                await dead_letter_message(key, value, topic, partition, offset, reason)
            except Exception as exc:
                log.exception("unexpected error on %s", what)
                reason = f"unexpected {type(exc).__name__}: {exc}"
                await dead_letter_message(key, value, topic, partition, offset, reason)

        return handle

    return wrap
