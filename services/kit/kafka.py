"""Kafka client settings and topic creation shared by the services."""

from __future__ import annotations

import asyncio
import contextlib
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
    wait_seconds: float = 30.0,
) -> None:
    """Create the missing topics (idempotent); compacted ones with cleanup.policy=compact."""
    compact = set(compacted)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(wait_seconds * 1000)
    )
    async with asyncio.timeout(wait_seconds):
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
            with contextlib.suppress(TopicAlreadyExistsError):  # another service was first
                await admin.create_topics(wanted)
            log.info("topics_created", topics=[t.name for t in wanted], partitions=partitions)
    finally:
        await admin.close()
