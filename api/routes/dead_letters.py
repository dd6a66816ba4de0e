"""Dead letters: what the pipeline could not decode or process, with the reason and
where it came from; an admin can read them and, after a fix, replay one to its source."""

from __future__ import annotations

import base64
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import Depends, HTTPException, Query
from pydantic import BaseModel

from api.deps import Producer, SettingsDep, require_admin
from api.routing import SlashTolerantRouter
from avro_schemas.codec import DecodeError, decode
from avro_schemas.topics import DEAD_LETTERS
from elevate.settings import Settings

log = logging.getLogger(__name__)

router = SlashTolerantRouter(
    prefix="/admin/dead-letters", tags=["dead letters"], dependencies=[Depends(require_admin)]
)


class DeadLetter(BaseModel):
    """One dead letter: its position, why it failed, where it came from, its bytes."""

    partition: int
    offset: int
    error: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    consumer: str | None  # which consumer gave up on it (each one reports its own)
    key: str | None
    record: str | None  # the Avro record name when the bytes still decode
    value_base64: str | None
    size: int


class Replayed(BaseModel):
    """Where a replayed message went."""

    topic: str
    partition: int
    offset: int


def _as_dead_letter(message: object) -> DeadLetter:
    headers = {k: v.decode("utf-8", "replace") for k, v in getattr(message, "headers", ())}
    value: bytes | None = getattr(message, "value", None)
    key: bytes | None = getattr(message, "key", None)
    try:
        record: str | None = decode(value).name
    except DecodeError:
        record = None

    def number(name: str) -> int | None:
        return int(headers[name]) if headers.get(name, "").isdigit() else None

    return DeadLetter(
        partition=getattr(message, "partition", 0),
        offset=getattr(message, "offset", 0),
        error=headers.get("error", ""),
        source_topic=headers.get("source_topic", ""),
        source_partition=number("source_partition"),
        source_offset=number("source_offset"),
        consumer=headers.get("consumer"),
        key=key.decode("utf-8", "replace") if key is not None else None,
        record=record,
        value_base64=base64.b64encode(value).decode() if value is not None else None,
        size=len(value or b""),
    )


async def _read(
    settings: Settings, partition: int, start: int | None, limit: int
) -> list[DeadLetter]:
    """Up to `limit` dead letters of one partition from `start` (default: the newest)."""
    topic = DEAD_LETTERS.name(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        first = max(0, end - limit) if start is None else start
        if first >= end:
            return []
        consumer.seek(tp, first)
        found: list[DeadLetter] = []
        while len(found) < limit and await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            if not batch:
                break
            found += [_as_dead_letter(m) for m in batch.get(tp, [])]
        return found[:limit]
    finally:
        await consumer.stop()


@router.get("/")
async def list_dead_letters(
    settings: SettingsDep,
    limit: int = Query(50, ge=1, le=500),
    partition: int = Query(0, ge=0),
) -> list[DeadLetter]:
    """The newest dead letters, oldest first."""
    if partition >= DEAD_LETTERS.partitions:
        raise HTTPException(
            404, f"the dead-letter topic has {DEAD_LETTERS.partitions} partition(s)"
        )
    return await _read(settings, partition, None, limit)


@router.post("/{partition}/{offset}/replay/", status_code=202)
async def replay_dead_letter(
    partition: int, offset: int, settings: SettingsDep, producer: Producer
) -> Replayed:
    """Send a dead letter's original bytes back to its source topic, to be processed
    again (every consumer is idempotent, so a message that had half-applied is safe)."""
    if not 0 <= partition < DEAD_LETTERS.partitions or offset < 0:
        raise HTTPException(404, "no dead letter at that position")
    found = await _read(settings, partition, offset, 1)
    if not found or found[0].offset != offset:
        raise HTTPException(404, f"no dead letter at partition {partition}, offset {offset}")
    letter = found[0]
    if not letter.source_topic.startswith(settings.topic_prefix):
        raise HTTPException(409, "the dead letter names no source topic of this pipeline")
    value = base64.b64decode(letter.value_base64) if letter.value_base64 else None
    sent = await producer.send_and_wait(
        letter.source_topic, value, key=letter.key.encode() if letter.key is not None else None
    )
    log.info("replayed dead letter %d@%d to %s", partition, offset, letter.source_topic)
    return Replayed(topic=sent.topic, partition=sent.partition, offset=sent.offset)
