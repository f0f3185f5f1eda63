"""Kafka client settings and topic creation shared by the services."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = structlog.get_logger(__name__)

COMPACTED_CONFIG = {"cleanup.policy": "compact", "segment.ms": "600000"}


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    partitions: int,
    compacted: Iterable[str] = (),
    timeout: float = 30.0,
) -> None:
    """Create the topics that are missing (idempotent); compacted ones with cleanup.policy=compact."""
    compact = set(compacted)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    async with asyncio.timeout(timeout):
        await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs=COMPACTED_CONFIG if name in compact else {},
            )
            for name in topics
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another service created it first
            log.info("topics_created", topics=[t.name for t in wanted], partitions=partitions)
    finally:
        await admin.close()
