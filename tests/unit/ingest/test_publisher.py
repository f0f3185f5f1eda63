"""KafkaPublisher against a stub producer: keys, values, bounded waits and error mapping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, NotEnoughReplicasError

from schemas.events import event_from_json, parse_event
from services.ingest.publisher import KafkaPublisher, PublishUnavailable
from tests.unit.ingest.support import event


class StubProducer:
    """Records sends; each future resolves, fails or hangs as configured."""

    def __init__(
        self, *, start_error: BaseException | None = None, hang_start: bool = False, ack: str = "ok"
    ) -> None:
        self.start_error = start_error
        self.hang_start = hang_start
        self.ack = ack
        self.sent: list[tuple[str, bytes, bytes]] = []
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
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.ack == "ok":
            future.set_result(object())
        elif self.ack == "error":
            future.set_exception(NotEnoughReplicasError())
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
