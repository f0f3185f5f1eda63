"""Following a Kafka topic in the background: reconnecting loops and a follower that knows
when it has read everything published before it started."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge

from services.kit.kafka import Target, client_kwargs

log = structlog.get_logger(__name__)

RETRY_SECONDS = (0.5, 1, 2, 5)
Handler = Callable[[Any, bool], str]
"""Takes a ConsumerRecord and whether the follower is still catching up; returns an outcome."""


class FollowerMetrics(Protocol):
    """Where a follower counts what it consumed (by topic and outcome) and its lag (by topic)."""

    consumed: Counter
    consumer_lag: Gauge


async def backoff(attempt: int) -> None:
    await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])


async def wait_for_topic(consumer: AIOKafkaConsumer, topic: str) -> None:
    """Wait until the cluster lists `topic`.

    Subscribing to a missing topic would only notice it at the next metadata refresh (minutes).
    """
    attempt = 0
    while topic not in await consumer.topics():
        if attempt == 0:
            log.info("waiting_for_topic", topic=topic)
        await backoff(attempt)
        attempt += 1


async def lag(consumer: AIOKafkaConsumer) -> int:
    """Messages between the positions and the last known high watermarks."""
    lag = 0
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is not None:
            lag += max(0, high - await consumer.position(tp))
    return lag


class Background:
    """A consuming loop run as one background task: `start()` it, `stop()` cancels it.

    `run()` connects, waits for the topic, subscribes and hands the consumer to `_consume()`;
    after any client error it reconnects with a backoff. Subclasses say how to build the
    consumer and what to do with it.
    """

    topic: str
    _task: asyncio.Task[None] | None = None
    _kind = "consume"
    _failed_event = "consume_failed"

    def start(self) -> None:
        """Start in the background."""
        self._task = asyncio.create_task(self.run(), name=f"{self._kind}:{self.topic}")

    async def stop(self) -> None:
        """Stop (an uncommitted batch is redelivered later)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """The loop itself, for a caller that supervises its own tasks."""
        attempt = 0
        while True:
            consumer = self._consumer()
            try:
                await consumer.start()
                await wait_for_topic(consumer, self.topic)
                consumer.subscribe([self.topic])
                self._started()
                attempt = 0
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect on any client error; the loop is the supervisor
                log.warning(self._failed_event, topic=self.topic, error=repr(exc))
                await backoff(attempt)
                attempt += 1
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    def _consumer(self) -> AIOKafkaConsumer:
        raise NotImplementedError

    def _started(self) -> None:
        """Hook: the consumer is subscribed."""

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        raise NotImplementedError


class Follower(Background):
    """Reads every partition of one topic without a consumer group (each replica reads it all).

    From the beginning (a compacted topic materialized in memory) or from the end (live only).
    `ready` is set once the positions reach the end offsets taken when the partitions were
    assigned: the read model then holds everything published before this replica started.
    """

    def __init__(
        self,
        bootstrap: Target,
        topic: str,
        handle: Handler,
        *,
        from_beginning: bool,
        metrics: FollowerMetrics | None = None,
        client_id: str = "callpulse",
    ) -> None:
        self.bootstrap, self.topic, self.handle = bootstrap, topic, handle
        self.client_id = client_id
        self.from_beginning, self.metrics = from_beginning, metrics
        self.ready = asyncio.Event()
        self._kind = "follow"
        self._failed_event = "follow_failed"

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **client_kwargs(self.bootstrap),
            group_id=None,  # no group: this replica gets every partition
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self.from_beginning else "latest",
            client_id=self.client_id,
        )

    def _started(self) -> None:
        log.info("follow_started", topic=self.topic)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        ends: dict[TopicPartition, int] | None = None
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            if ends is None and consumer.assignment():
                ends = await consumer.end_offsets(list(consumer.assignment()))
            catching_up = not self.ready.is_set()
            for messages in batches.values():
                for message in messages:
                    outcome = self.handle(message, catching_up)
                    if self.metrics is not None:
                        self.metrics.consumed.labels(self.topic, outcome).inc()
            if catching_up and ends is not None:
                await self._check_caught_up(consumer, ends)
            await self._report_lag(consumer)

    async def _check_caught_up(
        self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
    ) -> None:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return
        log.info("follow_caught_up", topic=self.topic)
        self.ready.set()

    async def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        if self.metrics is not None:
            self.metrics.consumer_lag.labels(self.topic).set(await lag(consumer))
