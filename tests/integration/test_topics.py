"""Topic creation on the real broker: every role creates what is missing at start, and
returns only once the broker serves it."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from avro_schemas.topics import ALL_TOPICS
from elevate.kafka import ensure_topics
from elevate.settings import Settings

pytestmark = pytest.mark.integration


def _isolated(service_settings: Settings) -> Settings:
    prefix = f"topics-{secrets.token_hex(4)}."
    return service_settings.model_copy(update={"topic_prefix": prefix})


async def test_roles_starting_together_all_find_every_topic_served(
    service_settings: Settings,
) -> None:
    settings = _isolated(service_settings)
    await asyncio.gather(*(ensure_topics(settings) for _ in range(4)))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = {
            topic["topic"]: topic
            for topic in await admin.describe_topics(
                [spec.name(settings.topic_prefix) for spec in ALL_TOPICS]
            )
        }
    finally:
        await admin.close()
    for spec in ALL_TOPICS:
        topic = described[spec.name(settings.topic_prefix)]
        assert topic["error_code"] == 0
        assert len(topic["partitions"]) == spec.partitions
        assert all(partition["leader"] >= 0 for partition in topic["partitions"])


async def test_a_topic_the_broker_refuses_is_an_error_not_a_silent_start(
    service_settings: Settings,
) -> None:
    settings = _isolated(service_settings)
    refused = NewTopic(
        name=f"{settings.topic_prefix}bad",
        num_partitions=1,
        replication_factor=1,
        topic_configs={"retention.ms": "soon"},
    )
    with pytest.raises(RuntimeError, match="bad"):
        await ensure_topics(settings, specs=(), extra=[refused], wait_seconds=5)
