"""The seek Faust makes after dropping fetched messages, against the real broker.

aiokafka's own seek_to_committed leaves a partition without a committed offset where it is;
ours rewinds it to the beginning, so messages Faust dropped are read again.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from services.aggregator import faust_compat
from services.aggregator.faust_compat import head_is_missing, seek_to_committed_or_beginning
from services.kit.kafka import ensure_topics
from tests.integration.aggregator.support import read_records


def test_uncommitted_partitions_rewind_to_the_beginning_committed_ones_to_their_offset(
    kafka_bootstrap: str,
) -> None:
    asyncio.run(_check(kafka_bootstrap))


async def _check(bootstrap: str) -> None:
    topic = f"rewind-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(10):
            for partition in (0, 1):
                await producer.send(topic, f"{i}".encode(), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        fresh, committed = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer.assign([fresh, committed])
        await consumer.commit({committed: OffsetAndMetadata(4, "")})
        await _read_to_end(consumer, [fresh, committed])

        # the trap: aiokafka alone leaves the uncommitted partition past what was read
        await consumer.seek_to_committed()
        assert await consumer.position(fresh) == 10
        assert await consumer.position(committed) == 4

        await _read_to_end(consumer, [fresh, committed])
        offsets = await seek_to_committed_or_beginning(consumer)
        assert offsets[committed] == 4
        assert await consumer.position(fresh) == 0
        assert await consumer.position(committed) == 4
        # the fresh partition's start stands for its committed offset in the commit hold
        assert faust_compat._starts[(fresh.topic, fresh.partition)] == 0  # noqa: SLF001
        assert (committed.topic, committed.partition) not in faust_compat._starts  # noqa: SLF001
        again = await consumer.getmany(fresh, timeout_ms=5000)
        assert [record.offset for record in again[fresh]][:1] == [0]

        # a changelog partition is Faust's to place: never rewound here
        consumer.seek(fresh, 7)
        await seek_to_committed_or_beginning(consumer, changelogs={topic})
        assert await consumer.position(fresh) == 7
        # the offset reset is honoured: "latest" puts an uncommitted partition at its end
        consumer.seek(fresh, 3)
        await seek_to_committed_or_beginning(consumer, reset="latest")
        assert await consumer.position(fresh) == 10
        assert faust_compat._starts[(fresh.topic, fresh.partition)] == 10  # noqa: SLF001
        assert await consumer.position(committed) == 4
    finally:
        await consumer.stop()


async def _read_to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
    while [tp for tp in tps if await consumer.position(tp) < 10]:
        await consumer.getmany(*tps, timeout_ms=1000)


def test_a_gap_of_one_at_the_head_of_the_acked_offsets_holds_the_commit() -> None:
    # Kafka's committed offset is the next one to read: 212 not acked, 213.. acked
    assert head_is_missing([213, 214, 215], 212)
    assert head_is_missing([215, 216], 212)
    assert not head_is_missing([212, 213], 212)
    assert not head_is_missing([], 212)
    assert not head_is_missing([5, 6], None)  # never committed: the seek rewinds instead


def test_records_already_handed_to_the_producer_wait_for_the_send_guard(
    kafka_bootstrap: str,
) -> None:
    """A frozen worker's producer sends what it held when it wakes; the guard runs first."""
    asyncio.run(_guarded_sends(kafka_bootstrap))


async def _guarded_sends(bootstrap: str) -> None:
    topic = f"guard-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    allowed, guarded = asyncio.Event(), []

    async def guard() -> None:
        guarded.append(time.monotonic())
        await allowed.wait()

    try:
        await producer.send_and_wait(topic, b"before")  # the sender is warm, metadata known
        faust_compat.guard_sends(producer, guard)
        faust_compat.guard_sends(producer, guard)  # idempotent: one guard per request
        delivery = await producer.send(topic, b"held")
        await asyncio.sleep(1.0)
        assert len(guarded) == 1
        assert not delivery.done()
        assert await _values(bootstrap, topic) == [b"before"]
        allowed.set()
        async with asyncio.timeout(10):
            await delivery
        assert await _values(bootstrap, topic) == [b"before", b"held"]
    finally:
        allowed.set()
        await producer.stop()


async def _values(bootstrap: str, topic: str) -> list[bytes | None]:
    return [record.value for record in await read_records(bootstrap, topic, partitions=1)]
