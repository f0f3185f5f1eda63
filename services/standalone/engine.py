"""The embedded driver: the durable SQLite log feeding the aggregator core, in one process.

`publish()` is the ingest side's EventPublisher: it returns only after the batch is committed to
the log, then runs both stages of the core. The core decides what to snapshot, when, and which
alerts fire, exactly as in the Faust worker; this driver runs its timers, hands snapshots to the
API's read model, call records to history and alerts to the alert service. On start the log is
replayed, so a restart (or a kill) loses nothing that was acknowledged.
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
from services.aggregator.core import Aggregator, Cadence, CallBatch, Incoming, Publication
from services.standalone.eventlog import SqliteEventLog

log = structlog.get_logger(__name__)

SnapshotSink = Callable[[RepSnapshot], object]
RecordSink = Callable[[list[CallRecord]], Awaitable[None]]
AlertSink = Callable[[Alert], object]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class EmbeddedEngine:
    """In-process bus: log → core → read model, history and alerts."""

    def __init__(
        self,
        event_log: SqliteEventLog,
        core: Aggregator,
        cadence: Cadence,
        on_snapshot: SnapshotSink,
        on_records: RecordSink,
        *,
        on_alert: AlertSink = lambda alert: None,
        clock: Clock = utcnow,
    ) -> None:
        self.log, self.core, self.cadence, self.clock = event_log, core, cadence, clock
        self.on_snapshot, self.on_records, self.on_alert = on_snapshot, on_records, on_alert
        self._records: dict[str, CallRecord] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self.ready = False

    async def start(self) -> None:
        """Replay the log into the core, publish what changed, start the timers."""
        started = time.monotonic()
        replayed = 0
        batch: list[Incoming] = []
        async for event in self.log.replay():
            batch.append((event, time.time()))
            if len(batch) >= 1000:
                replayed += self._ingest(batch)
                batch = []
        replayed += self._ingest(batch)
        await self.flush()
        log.info("log_replayed", events=replayed, seconds=round(time.monotonic() - started, 3))
        self._tasks = [
            asyncio.create_task(self._every(self.cadence.snapshot_interval, self.flush)),
            asyncio.create_task(self._every(self.cadence.rolling_refresh, self.refresh)),
            asyncio.create_task(self._every(self.cadence.alert_evaluation, self.judge)),
            asyncio.create_task(self._every(self.cadence.stale_sweep, self.sweep)),
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
        await self.flush()

    async def publish(self, events: Sequence[CallEvent]) -> None:
        """EventPublisher: commit to the log, then apply. Returns once durable."""
        async with self._lock:
            await self.log.append(events)
            arrived = time.time()
            self._ingest([(event, arrived) for event in events])

    async def publish_roster(self, record: RosterRecord) -> None:
        """RosterPublisher: apply a roster change; the reps it touches go out at the next flush."""
        async with self._lock:
            self.core.roster_changed(record)

    # -- the core's timers ----------------------------------------------------------------------

    async def flush(self) -> None:
        """Snapshots of changed reps, and the call records of the last interval."""
        async with self._lock:
            out = self.core.reps.flush(self.clock())
        await self._deliver(out)
        if self._records:
            records, self._records = list(self._records.values()), {}
            await self.on_records(records)

    async def refresh(self) -> None:
        """Reps whose numbers moved with time alone."""
        async with self._lock:
            out = self.core.reps.refresh(self.clock())
        await self._deliver(out)

    async def judge(self) -> None:
        """The alert tick."""
        async with self._lock:
            alerts = self.core.reps.judge(self.clock())
        await self._deliver(Publication(alerts=alerts))

    async def sweep(self) -> None:
        """Close calls left open too long; forget ended calls past the retention."""
        async with self._lock:
            now = self.clock()
            batch = self.core.calls.expire(self.core.calls.due(now), now, time.time())
            self._apply(batch)

    # -- plumbing -------------------------------------------------------------------------------

    def _ingest(self, incoming: list[Incoming]) -> int:
        if incoming:
            self._apply(self.core.calls.assemble(incoming))
        return len(incoming)

    def _apply(self, batch: CallBatch) -> None:
        """Stage 2 on the batch's facts, then stage 1's states: the order the Faust driver keeps."""
        self.core.reps.accumulate(batch.facts, self.clock())
        self.core.calls.save(batch)
        for record in batch.records:
            self._records[record.call_id] = record

    async def _deliver(self, out: Publication) -> None:
        for snap in out.snapshots:
            self.on_snapshot(snap)
        for alert in out.alerts:
            self.on_alert(alert)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # a failing sink must not stop the engine's clock
                log.exception("engine_job_failed", job=job.__name__)
