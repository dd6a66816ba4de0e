"""Offsets a Faust stream skipped, read back directly from Kafka.

Faust drops events it prefetched before a consumer-group rebalance ("generation"
changes) and still acknowledges them, so their offsets can be committed unprocessed:
a stream worker killed and restarted lost a few saves per partition this way. An agent
that must see every event records the last offset it applied per partition (in a table,
so the record survives restarts) and, when the next event jumps past it, reads the
skipped range with its own consumer and applies it first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faust.types import StreamT, TableT

from elevate.settings import Settings

log = logging.getLogger(__name__)


def skipped_range(last_applied: int | None, offset: int) -> range:
    """The offsets between the last applied one and this event (empty when none)."""
    if last_applied is None or offset <= last_applied + 1:
        return range(0)
    return range(last_applied + 1, offset)


class GapReader:
    """Reads given offset ranges of a partition, with no consumer group."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None

    async def read(
        self, topic: str, partition: int, offsets: range
    ) -> list[ConsumerRecord[bytes, bytes]]:
        if not offsets:
            return []
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                enable_auto_commit=False,
                group_id=None,
            )
            await self._consumer.start()
        consumer = self._consumer
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offsets.start)
        found: list[ConsumerRecord[bytes, bytes]] = []
        while await consumer.position(tp) < offsets.stop:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            if not batch:
                break
            found += [m for m in batch.get(tp, []) if m.offset in offsets]
        log.warning(
            "read back %d skipped offsets %s[%d] %d..%d",
            len(found),
            topic,
            partition,
            offsets.start,
            offsets.stop - 1,
        )
        return found


Handler = Callable[[bytes | None, bytes | None, str, int, int], Awaitable[None]]


async def apply_in_order(
    stream: StreamT[bytes], applied: TableT[Any, Any], reader: GapReader, handle: Handler
) -> None:
    """Hand every event of the stream to `handle(key, value, topic, partition, offset)`
    in partition order, first reading back any offsets the stream skipped. The agent
    must run with concurrency 1: the last applied offset is per partition."""
    async for event in stream.events():
        message = event.message
        position = str(message.partition).encode()
        stored = applied.get(position)
        last = int(stored) if stored else None
        for missed in await reader.read(
            message.topic, message.partition, skipped_range(last, message.offset)
        ):
            await handle(missed.key, missed.value, missed.topic, missed.partition, missed.offset)
        key = event.key if isinstance(event.key, bytes) else None
        await handle(key, event.value, message.topic, message.partition, message.offset)
        applied[position] = str(message.offset).encode()
