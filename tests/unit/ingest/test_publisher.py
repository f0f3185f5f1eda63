"""KafkaPublisher against a stub producer: keys, values, partitions, bounded waits, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    NotEnoughReplicasError,
    OutOfOrderSequenceNumber,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import CallEvent, event_from_json, parse_event
from services.ingest.publisher import (
    BATCH_API_MIN_EVENTS,
    KafkaPublisher,
    PublishUnavailable,
)
from services.kit.partitioning import murmur2, partition_for
from tests.unit.ingest.support import event

PARTITIONS = (0, 1, 2, 3)


class StubBatch:
    """A record batch that takes at most `capacity` records (an empty one takes any)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes]] = []
        self.closed = False

    def append(self, *, key: bytes, value: bytes, timestamp: float | None) -> object | None:
        if self.closed or len(self.records) >= self.capacity:
            self.closed = True
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


class StubProducer:
    """Records sends and batches; each future resolves, fails or hangs as configured."""

    def __init__(
        self,
        *,
        start_error: BaseException | None = None,
        hang_start: bool = False,
        ack: str = "ok",
        error: type[KafkaError] = NotEnoughReplicasError,
        batch_capacity: int = 1000,
    ) -> None:
        self.start_error = start_error
        self.hang_start = hang_start
        self.ack = ack
        self.error = error
        self.batch_capacity = batch_capacity
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.batches: list[tuple[str, int, StubBatch]] = []
        self.started = asyncio.Event()
        self.stopped = False

    async def start(self) -> None:
        if self.hang_start:
            await asyncio.Event().wait()
        if self.start_error is not None:
            raise self.start_error
        self.started.set()

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, *, value: bytes, key: bytes) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        return self._delivery()

    async def partitions_for(self, topic: str) -> set[int]:
        return set(PARTITIONS)

    def create_batch(self) -> StubBatch:
        return StubBatch(self.batch_capacity)

    async def send_batch(
        self, batch: StubBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        self.batches.append((topic, partition, batch))
        return self._delivery()

    def _delivery(self) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.ack == "ok":
            future.set_result(object())
        elif self.ack == "error":
            future.set_exception(self.error())
        return future  # "hang": never acknowledged


def publisher_with(*producers: StubProducer, **options: Any) -> KafkaPublisher:
    queue = list(producers)
    return KafkaPublisher(
        "unused:9092",
        "test.call-events",
        producer_factory=lambda: queue.pop(0) if len(queue) > 1 else queue[0],
        **options,
    )


EVENTS = [parse_event(event(call_id="c-1")), parse_event(event(call_id="c-2", event_id="e-2"))]


async def test_publishes_each_event_keyed_by_call_id() -> None:
    producer = StubProducer()
    publisher = publisher_with(producer)
    await publisher.start()

    await publisher.publish(EVENTS)
    await publisher.stop()

    assert publisher.ready is False
    assert producer.stopped
    assert [(topic, key) for topic, key, _ in producer.sent] == [
        ("test.call-events", b"c-1"),
        ("test.call-events", b"c-2"),
    ]
    assert [event_from_json(value) for _, _, value in producer.sent] == EVENTS


async def test_not_connected_is_unavailable_at_once() -> None:
    publisher = publisher_with(StubProducer(), retry_after_seconds=3)

    assert publisher.ready is False
    with pytest.raises(PublishUnavailable) as raised:
        await publisher.publish(EVENTS)
    assert raised.value.retry_after == 3


async def test_unacknowledged_batch_times_out_as_unavailable() -> None:
    publisher = publisher_with(StubProducer(ack="hang"), timeout_seconds=0.05)
    await publisher.start()

    with pytest.raises(PublishUnavailable, match="in time"):
        await publisher.publish(EVENTS)
    await publisher.stop()


async def test_broker_errors_are_unavailable() -> None:
    publisher = publisher_with(StubProducer(ack="error"))
    await publisher.start()

    with pytest.raises(PublishUnavailable, match="rejected"):
        await publisher.publish(EVENTS)
    await publisher.stop()


async def test_a_failed_start_keeps_retrying_in_the_background() -> None:
    down = StubProducer(start_error=KafkaConnectionError("refused"))
    up = StubProducer()
    publisher = publisher_with(down, up, reconnect_delay_seconds=0.01)

    await publisher.start()
    assert publisher.ready is False
    assert down.stopped  # the failed attempt's resources are released

    await up.started.wait()  # the background attempt connects
    assert publisher.ready is True
    await publisher.stop()
    assert up.stopped


async def test_a_hanging_connect_is_bounded() -> None:
    publisher = publisher_with(StubProducer(hang_start=True), connect_timeout_seconds=0.05)

    await publisher.start()

    assert publisher.ready is False
    await publisher.stop()


def many_events(count: int, calls: int) -> list[CallEvent]:
    """`count` events spread round-robin over `calls` call ids."""
    return [
        parse_event(event(event_id=f"e-{n}", call_id=f"call-{n % calls}")) for n in range(count)
    ]


def keyed_partition(key: bytes) -> int:
    """Where the producer's keyed send() puts `key`."""
    return int(DefaultPartitioner()(key, list(PARTITIONS), list(PARTITIONS)))


async def test_large_requests_go_as_batches_in_the_keyed_partitions() -> None:
    producer = StubProducer()
    publisher = publisher_with(producer)
    await publisher.start()
    events = many_events(BATCH_API_MIN_EVENTS * 3, calls=17)

    await publisher.publish(events)
    await publisher.stop()

    assert producer.sent == []
    assert len(producer.batches) == len({keyed_partition(e.call_id.encode()) for e in events})
    for topic, partition, batch in producer.batches:
        assert topic == "test.call-events"
        assert batch.closed  # sent at once, no linger
        assert {keyed_partition(key) for key, _ in batch.records} == {partition}
        in_partition = [e for e in events if keyed_partition(e.call_id.encode()) == partition]
        assert [event_from_json(value) for _, value in batch.records] == in_partition
        assert [key for key, _ in batch.records] == [e.call_id.encode() for e in in_partition]


async def test_a_full_batch_continues_in_the_next_one_in_order() -> None:
    producer = StubProducer(batch_capacity=3)
    publisher = publisher_with(producer)
    await publisher.start()
    events = many_events(BATCH_API_MIN_EVENTS + 2, calls=1)

    await publisher.publish(events)
    await publisher.stop()

    assert [len(batch.records) for _, _, batch in producer.batches] == [3] * 11 + [1]
    assert len({partition for _, partition, _ in producer.batches}) == 1
    sent = [value for _, _, batch in producer.batches for _, value in batch.records]
    assert [event_from_json(value) for value in sent] == events


async def test_a_failed_batch_is_unavailable() -> None:
    publisher = publisher_with(StubProducer(ack="error"))
    await publisher.start()

    with pytest.raises(PublishUnavailable, match="rejected"):
        await publisher.publish(many_events(BATCH_API_MIN_EVENTS, calls=5))
    await publisher.stop()


async def test_an_unacknowledged_batch_times_out_as_unavailable() -> None:
    publisher = publisher_with(StubProducer(ack="hang"), timeout_seconds=0.05)
    await publisher.start()

    with pytest.raises(PublishUnavailable, match="in time"):
        await publisher.publish(many_events(BATCH_API_MIN_EVENTS, calls=5))
    await publisher.stop()


@pytest.mark.parametrize("count", [2, BATCH_API_MIN_EVENTS])
async def test_a_producer_state_error_replaces_the_producer(count: int) -> None:
    broken = StubProducer(ack="error", error=OutOfOrderSequenceNumber)
    fresh = StubProducer()
    publisher = publisher_with(broken, fresh, reconnect_delay_seconds=0.01)
    await publisher.start()

    with pytest.raises(PublishUnavailable):
        await publisher.publish(many_events(count, calls=2))
    assert publisher.ready is False  # no more sends into the broken producer

    await fresh.started.wait()
    await publisher.publish(many_events(count, calls=2))
    await publisher.stop()
    assert broken.stopped
    assert len(fresh.sent) + sum(len(b.records) for _, _, b in fresh.batches) == count


@given(key=st.binary(max_size=64), count=st.integers(min_value=1, max_value=64))
def test_partition_for_is_the_keyed_sends_choice(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert murmur2(key) == aiokafka_murmur2(key)
    assert partition_for(key, len(partitions)) == DefaultPartitioner()(key, partitions, [])
