"""Where accepted events go: the `EventPublisher` port and its Kafka adapter."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from schemas.events import CallEvent, event_to_json
from services.kit.kafka import Target, client_kwargs
from services.kit.partitioning import Record, group_by_partition

log = structlog.get_logger(__name__)

ProducerFactory = Callable[[], Any]
BATCH_API_MIN_EVENTS = 32
"""Requests with at least this many events go as record batches, one per partition; smaller
ones use the keyed send(), where concurrent requests share the producer's linger batches."""

MAX_BATCH_BYTES = 512 * 1024
"""Record batches stay below the broker's default max.message.bytes (1 MiB)."""


class PublishUnavailable(Exception):
    """Events could not be made durable now; the client should retry after `retry_after` s."""

    def __init__(self, retry_after: int, reason: str = "the event log is unavailable") -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.reason = reason


class EventPublisher(Protocol):
    """Makes a batch of events durable, or raises PublishUnavailable."""

    @property
    def ready(self) -> bool:
        """True when publish() can be expected to succeed."""
        ...

    async def publish(self, events: Sequence[CallEvent]) -> None:
        """Return only once every event is durable; all-or-nothing from the caller's view."""
        ...


class KafkaPublisher:
    """Produces events to Kafka with acks=all and idempotence, keyed by call_id."""

    def __init__(
        self,
        bootstrap: Target,
        topic: str,
        *,
        timeout_seconds: float = 5.0,
        connect_timeout_seconds: float = 10.0,
        retry_after_seconds: int = 5,
        reconnect_delay_seconds: float = 1.0,
        client_id: str = "callpulse-ingest",
        producer_factory: ProducerFactory | None = None,
    ) -> None:
        self._topic = topic
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._retry_after = retry_after_seconds
        self._reconnect_delay = reconnect_delay_seconds
        self._factory = producer_factory or (
            lambda: AIOKafkaProducer(
                **client_kwargs(bootstrap),
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                # One request is in flight per broker connection and records wait for it
                # anyway; lingering on top only adds latency.
                linger_ms=0,
                max_batch_size=MAX_BATCH_BYTES,
                request_timeout_ms=max(1000, int(timeout_seconds * 1000)),
            )
        )
        self._producer: Any = None
        self._connector: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        # The producer queues one batch per partition; more waiters than one time out early
        # (aiokafka's add_batch wait), so requests take turns per partition here.
        self._partition_turns: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def ready(self) -> bool:
        """True once a producer has connected to the cluster."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect within the connect timeout; if that fails, keep trying in the background."""
        if self._producer is not None or self._connector is not None:
            return
        if not await self._connect_once():
            self._connector = asyncio.create_task(self._keep_connecting())

    async def stop(self) -> None:
        """Stop reconnecting, flush what is in flight (bounded) and close the producer."""
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
            self._connector = None
        producer, self._producer = self._producer, None
        if producer is not None:
            await _close(producer, self._timeout)

    async def publish(self, events: Sequence[CallEvent]) -> None:
        """Send the whole batch, then wait for every ack, all within the publish timeout."""
        producer = self._producer
        if producer is None:
            raise PublishUnavailable(self._retry_after, "not connected to Kafka yet")
        if not events:
            return
        records = [(event.call_id.encode(), event_to_json(event)) for event in events]
        try:
            async with asyncio.timeout(self._timeout):
                if len(records) >= BATCH_API_MIN_EVENTS:
                    deliveries = await self._send_batches(producer, records)
                else:
                    deliveries = await self._send_each(producer, records)
                for delivery in deliveries:
                    await delivery
        except TimeoutError as exc:
            log.warning("publish_timeout", events=len(events), timeout_seconds=self._timeout)
            raise PublishUnavailable(
                self._retry_after, "Kafka did not acknowledge in time"
            ) from exc
        except KafkaError as exc:
            log.warning("publish_failed", events=len(events), error=type(exc).__name__)
            if isinstance(exc, PRODUCER_STATE_ERRORS):
                self._replace(producer)
            raise PublishUnavailable(self._retry_after, "Kafka rejected the batch") from exc

    async def _send_each(self, producer: Any, records: Sequence[Record]) -> list[Delivery]:
        """One keyed send() per record; the producer picks the partition."""
        return [
            _watched(await producer.send(self._topic, value=value, key=key))
            for key, value in records
        ]

    async def _send_batches(self, producer: Any, records: Sequence[Record]) -> list[Delivery]:
        """Record batches per partition, all partitions queued at once."""
        partitions = tuple(sorted(await producer.partitions_for(self._topic)))
        grouped = group_by_partition(records, partitions)
        sends = [self._send_partition(producer, p, items) for p, items in grouped.items()]
        return [delivery for deliveries in await asyncio.gather(*sends) for delivery in deliveries]

    async def _send_partition(
        self, producer: Any, partition: int, records: Sequence[Record]
    ) -> list[Delivery]:
        """Queue the batches of one partition in order; the acks are awaited by the caller."""
        async with self._partition_turns[partition]:
            return [
                _watched(await producer.send_batch(batch, self._topic, partition=partition))
                for batch in _fill_batches(producer, records)
            ]

    def _replace(self, broken: Any) -> None:
        """Start over with a new producer (a new producer id and fresh sequence numbers).

        After a broker outage, sends that timed out leave the idempotent producer's sequence
        numbers ahead of the broker's; aiokafka then fails every later send with
        OutOfOrderSequenceNumber and never recovers on its own.
        """
        if self._producer is not broken:
            return  # another request replaced it already
        self._producer = None
        log.warning("kafka_producer_replaced")
        self._closing.add(asyncio.create_task(_close(broken, self._timeout)))
        self._closing = {t for t in self._closing if not t.done()}
        if self._connector is None or self._connector.done():
            self._connector = asyncio.create_task(self._keep_connecting())

    async def _connect_once(self) -> bool:
        producer = self._factory()
        try:
            async with asyncio.timeout(self._connect_timeout):
                await producer.start()
        except Exception as exc:  # whatever failed, we are not connected: try again later
            log.warning("kafka_connect_failed", error=type(exc).__name__, detail=str(exc))
            await _close(producer, self._timeout)
            return False
        self._producer = producer
        log.info("kafka_connected", topic=self._topic)
        return True

    async def _keep_connecting(self) -> None:
        delay = self._reconnect_delay
        while True:
            await asyncio.sleep(delay)
            if await self._connect_once():
                return
            delay = min(delay * 2, 30.0)


PRODUCER_STATE_ERRORS = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)


Delivery = asyncio.Future[Any]


def _fill_batches(producer: Any, records: Sequence[Record]) -> Iterator[Any]:
    """Closed record batches holding `records` in order; a full batch starts the next one."""
    batch = producer.create_batch()
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            yield _closed(batch)
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any record
    yield _closed(batch)


def _closed(batch: Any) -> Any:
    # A closed batch is sent at once instead of lingering for more records.
    batch.close()
    return batch


def _watched(future: Delivery) -> Delivery:
    # After a timeout nobody awaits these; retrieve their errors to keep the logs clean.
    future.add_done_callback(_retrieve_exception)
    return future


def _retrieve_exception(future: Delivery) -> None:
    if not future.cancelled():
        future.exception()


async def _close(producer: Any, seconds: float) -> None:
    # A producer that never connected, or a broker that went away, must not hang shutdown.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            await producer.stop()
