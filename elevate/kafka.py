"""Kafka edges shared by every role: the producer, topic creation and dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import RequestTimedOutError, TopicAlreadyExistsError

from avro_schemas.codec import Decoded, DecodeError, decode, encode
from avro_schemas.records import Record
from avro_schemas.topics import ALL_TOPICS, DEAD_LETTERS, LARGEST_MESSAGE_BYTES, TopicSpec
from elevate.observability import DEAD_LETTERS as DEAD_LETTERS_COUNT
from elevate.observability import EVENTS_PRODUCED
from elevate.settings import Settings

log = logging.getLogger(__name__)


def create_producer(settings: Settings, *, client_id: str) -> AIOKafkaProducer:
    """A producer that reports success only once every in-sync replica has the message.

    Idempotence keeps retries from writing duplicates; linger and compression let many
    concurrent requests share one batch.
    """
    compression = None if settings.producer_compression == "none" else settings.producer_compression
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.producer_linger_ms,
        compression_type=compression,
        request_timeout_ms=15_000,
        max_request_size=LARGEST_MESSAGE_BYTES,
    )


def _topic_configs(spec: TopicSpec) -> dict[str, str]:
    configs = {"cleanup.policy": "compact"} if spec.compacted else {}
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    if spec.max_message_bytes is not None:
        configs["max.message.bytes"] = str(spec.max_message_bytes)
    return configs


# Kafka's error codes a topic creation may answer with and still leave the topic there.
_CREATED_OR_PENDING = {0, TopicAlreadyExistsError.errno, RequestTimedOutError.errno}


async def ensure_topics(
    settings: Settings,
    specs: Sequence[TopicSpec] = ALL_TOPICS,
    extra: Sequence[NewTopic] = (),
    wait_seconds: float = 60.0,
) -> None:
    """Create the registry's topics that do not exist yet (partitions, compaction), and
    any `extra` ones (the stream worker's table changelogs), and return once the broker
    serves them all.

    A consumer that joins its group before its topics are in the metadata is assigned
    nothing and stays idle until its next metadata refresh, minutes later; and other
    roles may be creating the same topics at this moment.
    """
    wanted = [
        NewTopic(
            name=spec.name(settings.topic_prefix),
            num_partitions=spec.partitions,
            replication_factor=1,
            topic_configs=_topic_configs(spec),
        )
        for spec in specs
    ] + list(extra)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            response = (await admin.create_topics(missing)).to_object()
            failed = {
                answer["topic"]: answer.get("error_message") or f"error {answer['error_code']}"
                for answer in response["topic_errors"]
                if answer["error_code"] not in _CREATED_OR_PENDING
            }
            if failed:
                raise RuntimeError(f"could not create topics: {failed}")
            log.info("created topics %s", ", ".join(t.name for t in missing))
        await _until_served(admin, [topic.name for topic in wanted], wait_seconds)
    finally:
        await admin.close()


async def _until_served(admin: AIOKafkaAdminClient, names: list[str], seconds: float) -> None:
    """Wait until every topic has all its partitions led by a broker."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        described = await admin.describe_topics(names)
        waiting = sorted(
            topic["topic"]
            for topic in described
            if topic["error_code"] != 0
            or not topic["partitions"]
            or any(partition["leader"] < 0 for partition in topic["partitions"])
        )
        if not waiting:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"topics not served after {seconds:.0f} s: {waiting}")
        await asyncio.sleep(0.25)


async def send_record(
    producer: AIOKafkaProducer,
    settings: Settings,
    topic: TopicSpec,
    record: Record,
    value: dict[str, object],
    key: str,
) -> None:
    """Encode and produce one record, returning once the broker acknowledged it."""
    name = topic.name(settings.topic_prefix)
    await producer.send_and_wait(name, encode(record, value), key=key.encode())
    EVENTS_PRODUCED.labels(name).inc()


def dead_letter_headers(
    *, error: str, source_topic: str, partition: int, offset: int, consumer: str
) -> list[tuple[str, bytes]]:
    """Why a message is a dead letter, where it came from, and which consumer gave up."""
    return [
        ("error", error.encode("utf-8", "replace")[:4000]),
        ("source_topic", source_topic.encode()),
        ("source_partition", str(partition).encode()),
        ("source_offset", str(offset).encode()),
        ("consumer", consumer.encode()),
    ]


async def send_dead_letter(
    producer: AIOKafkaProducer,
    settings: Settings,
    *,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: str,
    consumer: str,
) -> None:
    """Keep an unprocessable message with why it failed and where it came from."""
    headers = dead_letter_headers(
        error=error,
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        consumer=consumer,
    )
    await producer.send_and_wait(
        DEAD_LETTERS.name(settings.topic_prefix), value, key=key, headers=headers
    )
    DEAD_LETTERS_COUNT.labels(source_topic).inc()
    log.warning(
        "dead-lettered %s[%d]@%d: %s",
        source_topic,
        partition,
        offset,
        error,
        extra={"topic": source_topic, "partition": partition, "offset": offset},
    )


async def follow_topic(
    settings: Settings,
    spec: TopicSpec,
    apply: Callable[[Decoded], None],
    ready: asyncio.Event,
    after_batch: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Read a (compacted) topic from its start forever, handing every record to `apply`
    and setting `ready` once caught up with the end offsets seen at start. Every
    process that needs the whole topic in memory follows it this way, with no group."""
    topic = spec.name(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(spec.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    try:
                        apply(decode(message.value))
                    except (DecodeError, KeyError, ValueError) as exc:
                        # Only this service's own stream writes these topics; a bad
                        # record there is a bug to see in the logs, not candidate input.
                        log.error("skipping bad record at %s@%d: %s", tp, message.offset, exc)
            if batch and after_batch is not None:
                await after_batch()
            if not ready.is_set():
                positions = {tp: await consumer.position(tp) for tp in partitions}
                if all(positions[tp] >= end[tp] for tp in partitions):
                    ready.set()
                    log.info("caught up with %s", topic)
    finally:
        await consumer.stop()
