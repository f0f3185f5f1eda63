"""Where roster changes go: the `RosterPublisher` port and its Kafka adapter."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer

from schemas.roster import RosterRecord
from services.kit.kafka import Target, client_kwargs

log = structlog.get_logger(__name__)


class PublishFailed(Exception):
    """A roster record could not be published now; the change is stored, retry to republish."""


class RosterPublisher(Protocol):
    """Publishes roster records to whoever computes KPIs (the aggregator or the embedded domain)."""

    async def publish(self, record: RosterRecord) -> None:
        """Return once the record is durable; raise PublishFailed otherwise."""
        ...


class KafkaRosterPublisher:
    """Produces roster records as JSON to the compacted roster topic, key `RosterRecord.key()`.

    Connects in the background (the API starts without Kafka); until connected, and whenever a
    send fails, publish() raises PublishFailed.
    """

    def __init__(self, bootstrap: Target, topic: str, *, timeout_seconds: float = 10.0) -> None:
        self._bootstrap, self._topic, self._timeout = bootstrap, topic, timeout_seconds
        self._producer: Any = None
        self._connector: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """True once connected."""
        return self._producer is not None

    def start(self) -> None:
        """Connect in the background, retrying until it works."""
        self._connector = asyncio.create_task(self._connect(), name="roster-publisher")

    async def stop(self) -> None:
        """Stop connecting, or flush and disconnect."""
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, record: RosterRecord) -> None:
        """Produce one record and wait for acks=all."""
        if self._producer is None:
            raise PublishFailed("not connected to Kafka")
        try:
            async with asyncio.timeout(self._timeout):
                await self._producer.send_and_wait(
                    self._topic, key=record.key().encode(), value=record.model_dump_json().encode()
                )
        except Exception as exc:  # aiokafka raises several KafkaError types, and timeouts
            log.warning("roster_publish_failed", key=record.key(), error=repr(exc))
            raise PublishFailed(str(exc)) from exc

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            producer = AIOKafkaProducer(
                **client_kwargs(self._bootstrap),
                client_id="callpulse-api",
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=int(self._timeout * 1000),
            )
            try:
                await producer.start()
            except Exception as exc:  # unreachable cluster, DNS, auth...: retry
                log.warning("roster_publisher_connect_failed", error=repr(exc))
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._producer = producer
            log.info("roster_publisher_connected")
            return


class NullRosterPublisher:
    """Publishes nowhere: for an API without Kafka whose roster only lives in the database."""

    async def publish(self, record: RosterRecord) -> None:
        """Do nothing."""
