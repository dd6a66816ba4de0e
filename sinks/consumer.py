"""The batch loop every sink shares: consume, decode, write a batch, then commit.

Offsets are committed only after the batch is written, so a crash replays it, and
every writer is an idempotent upsert keyed by ids, so a replay changes nothing. A
message that does not decode, or a row the database refuses, goes to the dead-letter
topic with the reason; the rest of the batch still lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from avro_schemas.codec import DecodeError, decode
from avro_schemas.topics import TopicSpec
from elevate.kafka import create_producer, send_dead_letter
from elevate.observability import (
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    SINK_BATCH_SIZE,
    SINK_FLUSH_SECONDS,
)
from elevate.settings import Settings

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class SinkRecord:
    """A decoded message with where it came from."""

    name: str
    value: dict[str, Any]
    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes | None


class BatchWriter(Protocol):
    """Writes one batch idempotently; raises when the batch could not be written."""

    async def write(self, records: Sequence[SinkRecord]) -> None: ...

    def is_transient(self, exc: Exception) -> bool:
        """True when the failure is the database's (retry), not the data's (dead-letter)."""
        ...


class SinkStats:
    """Counters a sink keeps for progress reporting and metrics."""

    def __init__(self) -> None:
        self.started = False
        self.written = 0
        self.dead_lettered = 0
        self.batches = 0


async def run_sink(
    settings: Settings,
    *,
    name: str,
    topics: Sequence[TopicSpec],
    writer: BatchWriter,
    stats: SinkStats | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a sink until `stop` is set (or forever)."""
    stats = stats or SinkStats()
    stop = stop or asyncio.Event()
    group = f"{settings.topic_prefix}sink-{name}"
    consumer = AIOKafkaConsumer(
        *(spec.name(settings.topic_prefix) for spec in topics),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.sink_batch_size,
    )
    producer = create_producer(settings, client_id=f"elevate-sink-{name}")
    await producer.start()
    await consumer.start()
    stats.started = True
    log.info("sink %s consuming %s", name, ", ".join(t.base_name for t in topics))
    try:
        while not stop.is_set():
            batch = await consumer.getmany(
                timeout_ms=int(settings.sink_flush_seconds * 1000),
                max_records=settings.sink_batch_size,
            )
            messages = [m for part in batch.values() for m in part]
            if not messages:
                continue
            for message in messages:
                EVENTS_CONSUMED.labels(message.topic, f"sink-{name}").inc()
            records = await _decode_all(messages, producer, settings, stats, f"sink-{name}")
            started = time.perf_counter()
            await _write_with_retries(writer, records, producer, settings, stats, f"sink-{name}")
            SINK_FLUSH_SECONDS.labels(name).observe(time.perf_counter() - started)
            SINK_BATCH_SIZE.labels(name).observe(len(messages))
            await consumer.commit()
            stats.batches += 1
            await _report_lag(consumer, group)
    finally:
        await consumer.stop()
        await producer.stop()


async def _report_lag(consumer: AIOKafkaConsumer, group: str) -> None:
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is not None:
            lag = max(0, end - await consumer.position(tp))
            CONSUMER_LAG.labels(tp.topic, str(tp.partition), group).set(lag)


async def _decode_all(
    messages: Sequence[ConsumerRecord[bytes, bytes]],
    producer: AIOKafkaProducer,
    settings: Settings,
    stats: SinkStats,
    consumer: str,
) -> list[SinkRecord]:
    records: list[SinkRecord] = []
    for message in messages:
        try:
            decoded = decode(message.value)
        except DecodeError as exc:
            await _dead_letter(
                producer,
                settings,
                stats,
                consumer,
                message.topic,
                message.partition,
                message.offset,
                message.key,
                message.value,
                str(exc),
            )
            continue
        records.append(
            SinkRecord(
                decoded.name,
                decoded.value,
                message.topic,
                message.partition,
                message.offset,
                message.key,
                message.value,
            )
        )
    return records


async def _write_with_retries(
    writer: BatchWriter,
    records: list[SinkRecord],
    producer: AIOKafkaProducer,
    settings: Settings,
    stats: SinkStats,
    consumer: str,
) -> None:
    """Write the batch. While the database is unreachable, wait and retry (nothing is
    committed meanwhile); when it refuses the data, find the bad rows one by one."""
    if not records:
        return
    attempt = 0
    while True:
        try:
            await writer.write(records)
            stats.written += len(records)
            return
        except Exception as exc:
            if not writer.is_transient(exc):
                log.warning("batch of %d refused (%r); writing rows one by one", len(records), exc)
                break
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            attempt += 1
            log.warning("batch of %d failed (%r); retrying in %.1fs", len(records), exc, delay)
            await asyncio.sleep(delay)
    for record in records:
        try:
            await writer.write([record])
            stats.written += 1
        except Exception as exc:
            if writer.is_transient(exc):
                raise  # the database went away mid-way: crash and replay the batch
            await _dead_letter(
                producer,
                settings,
                stats,
                consumer,
                record.topic,
                record.partition,
                record.offset,
                record.key,
                record.raw,
                f"write failed: {exc!r}",
            )


async def _dead_letter(
    producer: AIOKafkaProducer,
    settings: Settings,
    stats: SinkStats,
    consumer: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: str,
) -> None:
    await send_dead_letter(
        producer,
        settings,
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        error=error,
        consumer=consumer,
    )
    stats.dead_lettered += 1
