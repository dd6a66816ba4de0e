"""Offsets a Faust stream skipped, read back directly from Kafka.

Faust drops the events it prefetched when the consumer group rebalances, and the
stream goes on with later ones; a stream worker killed and restarted lost a few saves
per partition this way, their offsets committed unprocessed. An agent that must see
every event records the highest offset it handled per partition (in a table, so the
record survives restarts) and, when the next event jumps past it, reads the skipped
range with its own consumer and handles it first.
"""

from __future__ import annotations

import asyncio
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
        self._lock = asyncio.Lock()  # one consumer, so one read at a time

    async def read(
        self, topic: str, partition: int, offsets: range
    ) -> list[ConsumerRecord[bytes, bytes]]:
        if not offsets:
            return []
        async with self._lock:
            return await self._read(topic, partition, offsets)

    async def _read(
        self, topic: str, partition: int, offsets: range
    ) -> list[ConsumerRecord[bytes, bytes]]:
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


class GapRepair:
    """Hands every event of an agent's stream to a handler, reading back first any
    offsets the stream skipped.

    `reached` is a table of the highest offset handled per partition, so a skip is
    also seen across a restart. Each event is claimed the moment an actor takes it,
    with no await in between, so with agent concurrency above 1 the actors never read
    the same range back twice; a message still being handled is not skipped, because
    the consumer does not commit past it (streams.commits) and it comes back after a
    restart as an ordinary event.
    """

    def __init__(self, reached: TableT[Any, Any], reader: GapReader) -> None:
        self.reached = reached
        self.reader = reader
        self._claimed: dict[tuple[str, int], int] = {}

    def _claim(self, topic: str, partition: int, offset: int) -> range:
        stored = self.reached.get(str(partition).encode())
        candidates = [int(stored)] if stored else []
        if (topic, partition) in self._claimed:
            candidates.append(self._claimed[(topic, partition)])
        last = max(candidates, default=None)
        self._claimed[(topic, partition)] = offset if last is None else max(last, offset)
        return skipped_range(last, offset)

    def _reached(self, partition: int, offset: int) -> None:
        position = str(partition).encode()
        stored = self.reached.get(position)
        if not stored or int(stored) < offset:
            self.reached[position] = str(offset).encode()

    async def apply(self, stream: StreamT[bytes], handle: Handler) -> None:
        """`handle(key, value, topic, partition, offset)` each event of the stream."""
        async for event in stream.events():
            message = event.message
            skipped = self._claim(message.topic, message.partition, message.offset)
            for missed in await self.reader.read(message.topic, message.partition, skipped):
                await handle(
                    missed.key, missed.value, missed.topic, missed.partition, missed.offset
                )
            key = event.key if isinstance(event.key, bytes) else None
            await handle(key, event.value, message.topic, message.partition, message.offset)
            self._reached(message.partition, message.offset)
