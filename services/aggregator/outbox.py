"""Records gathered per (topic, partition) and handed to Kafka as whole batches.

Faust's `Topic.send` costs ~50-100 µs a record (futures, callbacks, codecs); profiles of a
draining worker put a quarter of its time there. The outbox appends to aiokafka record batches
instead (a few µs a record) on the worker's own producer, so Faust's commit, which flushes that
producer before committing offsets, still covers everything sent: at-least-once is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from services.kit.partitioning import partition_for

Producer = Any  # aiokafka.AIOKafkaProducer: create_batch, send_batch, partitions_for
Record = tuple[bytes | None, bytes | None]  # key, value (None: a tombstone)


class Outbox:
    """Add records, then `send()`: one batch (or a few, when full) per topic partition."""

    def __init__(self, producer: Callable[[], Awaitable[Producer]]) -> None:
        self._producer = producer
        self._records: dict[tuple[str, int | None], list[Record]] = {}
        self._partitions: dict[str, int] = {}

    def add(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        """Queue a record; keyed records without a partition go where Kafka's partitioner puts
        them (so compacted topics and co-partitioned consumers see no difference). A None value
        is a tombstone."""
        self._records.setdefault((topic, partition), []).append((key, value))

    def __len__(self) -> int:
        return sum(len(records) for records in self._records.values())

    async def send(self) -> list[asyncio.Future[Any]]:
        """Hand every queued record to the producer; the futures resolve when Kafka has them."""
        records, self._records = self._records, {}
        if not records:
            return []
        producer = await self._producer()
        routed: dict[tuple[str, int], list[Record]] = {}
        for (topic, partition), items in records.items():
            if partition is not None:
                routed.setdefault((topic, partition), []).extend(items)
                continue
            count = await self._count(producer, topic)
            for key, value in items:
                if key is None:
                    raise ValueError(f"a record for {topic} needs a key or a partition")
                routed.setdefault((topic, partition_for(key, count)), []).append((key, value))
        sent = []
        for (topic, partition), items in routed.items():
            sent += await _send(producer, topic, partition, items)
        return sent

    async def _count(self, producer: Producer, topic: str) -> int:
        if topic not in self._partitions:
            self._partitions[topic] = len(await producer.partitions_for(topic))
        return self._partitions[topic]


async def _send(
    producer: Producer, topic: str, partition: int, items: list[Record]
) -> list[asyncio.Future[Any]]:
    sent = []
    batch = producer.create_batch()
    for key, value in items:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it
            sent.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record for {topic} is larger than a producer batch")
    if batch.record_count():
        sent.append(await producer.send_batch(batch, topic, partition=partition))
    return sent
