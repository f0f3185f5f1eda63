"""The aggregator's outbox against the real broker: records land where a keyed send puts them."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaProducer

from services.aggregator.outbox import Outbox
from services.kit.kafka import ensure_topics
from tests.integration.aggregator.support import PARTITIONS, read_records


def test_outbox_routes_like_a_keyed_send_splits_full_batches_and_confirms(
    kafka_bootstrap: str,
) -> None:
    asyncio.run(_check(kafka_bootstrap))


async def _check(bootstrap: str) -> None:
    mine, keyed = f"outbox-{uuid.uuid4().hex[:8]}", f"keyed-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [mine, keyed], partitions=PARTITIONS)
    # small batches: 300 records of ~1 KB must be split over several batches per partition
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=16_384)
    await producer.start()
    try:

        async def started() -> AIOKafkaProducer:
            return producer

        outbox = Outbox(started)
        records = [(f"rep-{i}".encode(), f"{i:04d}".encode() * 250) for i in range(300)]
        for key, value in records:
            outbox.add(mine, key, value)
        outbox.add(mine, None, b"pinned", partition=2)
        assert len(outbox) == 301
        delivered = await asyncio.gather(*await outbox.send())
        assert len(delivered) > PARTITIONS  # full batches were shipped and new ones begun
        assert len(outbox) == 0
        for key, value in records:
            await producer.send(keyed, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    got, expected = await _placement(bootstrap, mine), await _placement(bootstrap, keyed)
    assert got.pop(b"pinned") == 2
    assert got == expected


async def _placement(bootstrap: str, topic: str) -> dict[bytes, int]:
    """key (or value, for unkeyed records) -> partition, for every record of the topic."""
    records = await read_records(bootstrap, topic)
    return {record.key or record.value or b"": record.partition for record in records}
