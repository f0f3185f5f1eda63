"""The embedded engine: durable SQLite log + the same domain as the Faust stages, in one process.

`publish()` is the ingest side's EventPublisher: it returns only after the batch is committed to
the log, then feeds the in-memory Floor. Snapshots go to the API's read model (coalesced like the
Faust worker's), call records to the history store. On start the log is replayed, so a restart
(or a kill) loses nothing that was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import structlog

from schemas.alerts import Alert
from schemas.calls import CallRecord
from schemas.events import CallEvent
from schemas.kpis import RepSnapshot
from schemas.roster import RosterRecord
from services.aggregator.domain.floor import Applied, Floor
from services.aggregator.domain.rep import signature
from services.standalone.eventlog import SqliteEventLog

log = structlog.get_logger(__name__)

SnapshotSink = Callable[[RepSnapshot], object]
RecordSink = Callable[[list[CallRecord]], Awaitable[None]]


class EmbeddedEngine:
    """In-process bus: log → domain → read model and history."""

    def __init__(
        self,
        event_log: SqliteEventLog,
        floor: Floor,
        on_snapshot: SnapshotSink,
        on_records: RecordSink,
        *,
        on_alert: Callable[[Alert], object] = lambda alert: None,
        snapshot_interval: float = 0.25,
        rolling_refresh: float = 15.0,
    ) -> None:
        self.log, self.floor = event_log, floor
        self.on_snapshot, self.on_records, self.on_alert = on_snapshot, on_records, on_alert
        self.snapshot_interval, self.rolling_refresh = snapshot_interval, rolling_refresh
        self._dirty: dict[str, float] = {}
        self._records: dict[str, CallRecord] = {}
        self._published: dict[str, object] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self.ready = False

    async def start(self) -> None:
        """Replay the log into the domain, publish every rep, start the timers."""
        started = time.monotonic()
        now = datetime.now(UTC)
        replayed = 0
        async for event in self.log.replay():
            self._take(self.floor.apply(event, now), arrived=None)
            replayed += 1
        for rep_id in list(self.floor.reps):
            self._publish(rep_id, None, force=True)
        self._dirty.clear()
        await self._flush_records()
        log.info("log_replayed", events=replayed, seconds=round(time.monotonic() - started, 3))
        self._tasks = [
            asyncio.create_task(self._every(self.snapshot_interval, self._flush)),
            asyncio.create_task(self._every(self.rolling_refresh, self._refresh)),
            asyncio.create_task(self._every(60.0, self._close_stale)),
        ]
        self.ready = True

    async def stop(self) -> None:
        """Stop the timers and write what is pending."""
        self.ready = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush()

    async def publish(self, events: Sequence[CallEvent]) -> None:
        """EventPublisher: commit to the log, then apply. Returns once durable."""
        async with self._lock:
            await self.log.append(events)
            now = datetime.now(UTC)
            arrived = time.time()
            for event in events:
                self._take(self.floor.apply(event, now), arrived)

    async def publish_roster(self, record: RosterRecord) -> None:
        """RosterPublisher: apply a roster change and republish the reps it touches."""
        self.floor.roster.apply(record)
        for rep_id in list(self.floor.reps):
            self._dirty.setdefault(rep_id, time.time())

    def _take(self, applied: Applied, arrived: float | None) -> None:
        for rep_id in applied.reps:
            self._dirty.setdefault(rep_id, arrived if arrived is not None else time.time())
        if applied.record is not None:
            self._records[applied.record.call_id] = applied.record

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # a failing sink must not stop the engine's clock
                log.exception("engine_job_failed", job=job.__name__)

    async def _flush(self) -> None:
        batch, self._dirty = self._dirty, {}
        for rep_id, arrived in batch.items():
            self._publish(rep_id, arrived, force=True)
        await self._flush_records()

    async def _flush_records(self) -> None:
        if self._records:
            records, self._records = list(self._records.values()), {}
            await self.on_records(records)

    async def _refresh(self) -> None:
        for rep_id in list(self.floor.reps):
            self._publish(rep_id, None, force=False)

    async def _close_stale(self) -> None:
        now = datetime.now(UTC)
        for applied in self.floor.close_stale(now):
            self._take(applied, time.time())
        self.floor.forget_ended(now)

    def _publish(self, rep_id: str, arrived: float | None, *, force: bool) -> None:
        now = datetime.now(UTC)
        lag = 0.0 if arrived is None else max(0.0, now.timestamp() - arrived)
        snap = self.floor.snapshot(rep_id, now, lag)
        for alert in self.floor.alerts(snap, now):
            self.on_alert(alert)
        body = signature(snap)
        if not force and self._published.get(rep_id) == body:
            return
        self._published[rep_id] = body
        self.on_snapshot(snap)
