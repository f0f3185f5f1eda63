"""Kafka consumers of the API: KPI snapshots into the read model, call records and alert
transitions into the database. Each connects and reconnects in the background, so the API
starts without Kafka."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.alerts import Alert
from schemas.calls import CallRecord
from schemas.kpis import RepSnapshot
from services.api.db import repository
from services.api.metrics import ApiMetrics
from services.api.readmodel import ReadModel
from services.kit.follow import Background, Handler, backoff, lag
from services.kit.kafka import Target, client_kwargs

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)


def kpis_handler(readmodel: ReadModel) -> Handler:
    """Apply RepSnapshot JSON to the read model; a tombstone removes the rep."""

    def handle(message: Any, catching_up: bool) -> str:
        if message.value is None:
            if message.key is not None:
                readmodel.remove(message.key.decode())
            return "deleted"
        try:
            snapshot = RepSnapshot.model_validate_json(message.value)
        except ValidationError:
            log.warning("snapshot_invalid", offset=message.offset, partition=message.partition)
            return "invalid"
        return "applied" if readmodel.apply(snapshot, replayed=catching_up) else "stale"

    return handle


Store = Callable[[list[CallRecord]], Awaitable[None]]


def calls_store(
    sessions: async_sessionmaker[AsyncSession],
    conversation_min_seconds: float,
    *,
    after: Store | None = None,
) -> Store:
    """Upsert a batch of call records in one transaction (`conversation_min_seconds` judges
    records written before they carried their facts), then hand them to `after` (the
    competitions' live standings)."""

    async def store(records: list[CallRecord]) -> None:
        async with sessions.begin() as session:
            await repository.upsert_calls(
                session, records, conversation_min_seconds=conversation_min_seconds
            )
        if after is not None:
            await after(records)

    return store


class StoringConsumer(Background, Generic[M]):
    """Stores a topic's records: batched, offsets committed after the database commit.

    At-least-once: a crash between the two redelivers the batch, so `store` must be idempotent.
    API replicas share one consumer group, so each record is normally stored once.
    """

    model: type[M]
    name: str = "records"

    def __init__(
        self,
        bootstrap: Target,
        topic: str,
        group_id: str,
        store: Callable[[list[M]], Awaitable[object]],
        *,
        metrics: ApiMetrics | None = None,
        max_records: int = 500,
    ) -> None:
        self.bootstrap, self.topic, self.group_id = bootstrap, topic, group_id
        self.store, self.metrics, self.max_records = store, metrics, max_records
        self._kind = "store"
        self._failed_event = "storing_consumer_failed"

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **client_kwargs(self.bootstrap),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="callpulse-api",
        )

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Store each batch, then commit it (a failure before the commit redelivers it)."""
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=self.max_records)
            if batches:
                records = self._records(batches)
                if records:
                    await self._store(records)
                await consumer.commit()
            if self.metrics is not None:
                self.metrics.consumer_lag.labels(self.topic).set(await lag(consumer))

    def _records(self, batches: dict[Any, list[Any]]) -> list[M]:
        records = []
        for messages in batches.values():
            for message in messages:
                if message.value is None:
                    continue  # compaction tombstone: history keeps what it has
                try:
                    records.append(self.model.model_validate_json(message.value))
                except ValidationError:
                    log.warning("record_invalid", topic=self.topic, offset=message.offset)
                    self._count("invalid")
        return records

    async def _store(self, records: list[M]) -> None:
        # The database may be briefly away: retry the same batch rather than skip it.
        attempt = 0
        while True:
            try:
                await self.store(records)
            except Exception as exc:  # driver errors vary; nothing is committed to Kafka yet
                log.warning(f"{self.name}_store_failed", records=len(records), error=repr(exc))
                await backoff(attempt)
                attempt += 1
                continue
            self._stored(len(records))
            self._count("applied", len(records))
            return

    def _stored(self, n: int) -> None:
        """Hook: count stored records."""

    def _count(self, outcome: str, n: int = 1) -> None:
        if self.metrics is not None:
            self.metrics.consumed.labels(self.topic, outcome).inc(n)


class CallsConsumer(StoringConsumer[CallRecord]):
    """Stores call records in history (idempotent upserts by call_id and version)."""

    model = CallRecord
    name = "calls"

    def _stored(self, n: int) -> None:
        if self.metrics is not None:
            self.metrics.calls_stored.inc(n)


class AlertsConsumer(StoringConsumer[Alert]):
    """Stores alert transitions (`AlertService.record`: history, deliveries, SSE feed).

    Idempotent by (alert_id, state): a redelivered transition adds nothing, so each one
    notifies each channel once whichever replica consumed it, and however often.
    """

    model = Alert
    name = "alerts"
