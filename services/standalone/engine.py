"""The embedded driver: the durable SQLite log feeding the aggregator core, in one process.

`publish()` is the ingest side's EventPublisher: it returns only after the batch is committed to
the log, then runs both stages of the core. The core decides what to snapshot, when, and which
alerts fire, exactly as in the Faust worker; this driver runs its timers, hands snapshots to the
API's read model, call records to history and alerts to the alert service.

Restarts are bounded by checkpoints: every `checkpoint_seconds` (and at a clean stop) the keys
of both core stores changed since the last checkpoint are written to the log's SQLite file with
the seq of the last event applied, in one transaction and under the engine's lock, so the state
and the seq agree. A start loads the checkpoint and replays only the events after it; a kill at
any moment loses nothing acknowledged (every event is in the log before its ack) and counts
nothing twice (the checkpoint holds exactly the events up to its seq). Events a checkpoint
covers are deleted from the log once older than `log_retention`. A checkpoint made with other
KPI rules is discarded: the state is rebuilt from what the log keeps, then rewritten whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import structlog

from schemas.alerts import Alert
from schemas.calls import CallRecord
from schemas.events import CallEvent
from schemas.kpis import RepSnapshot
from schemas.roster import RosterRecord
from services.aggregator.core import (
    Aggregator,
    Cadence,
    CallBatch,
    Incoming,
    MemoryStore,
    Publication,
    Slices,
    Store,
    next_slice,
)
from services.aggregator.domain.calls import CallState, call_record, record_id
from services.standalone.eventlog import Changes, SqliteEventLog

log = structlog.get_logger(__name__)

SnapshotSink = Callable[[RepSnapshot], object]
RecordSink = Callable[[list[CallRecord]], Awaitable[None]]
AlertSink = Callable[[Alert], object]
AlertRecorder = Callable[[list[Alert]], Awaitable[object]]
Clock = Callable[[], datetime]

REPLAY_BATCH = 1000
REPLAY_SWEEP_SECONDS = 600.0
"""During a replay, the stale sweep runs whenever the log's arrival times advance this much."""
REPLAY_STORE_EVENTS = 20_000
"""During a replay, pending call records go to history once this many have gathered."""
TRIM_CHUNK = 2000
"""Events deleted per transaction by the retention; the engine's lock is held for one chunk."""


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class EmbeddedEngine:
    """In-process bus: log → core → read model, history and alerts; checkpoints of the core."""

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
        checkpoint_seconds: float = 30.0,
        log_retention: timedelta = timedelta(days=35),
    ) -> None:
        self.log, self.core, self.cadence, self.clock = event_log, core, cadence, clock
        self.on_snapshot, self.on_records, self.on_alert = on_snapshot, on_records, on_alert
        self.record_alerts: AlertRecorder | None = None
        """Stores alert transitions durably (idempotent); awaited before each checkpoint."""
        self.checkpoint_seconds, self.log_retention = checkpoint_seconds, log_retention
        self._stores = {"calls": _memory(core.calls.store), "reps": _memory(core.reps.store)}
        self._rules = json.dumps(asdict(core.calls.rules), sort_keys=True)
        self._records: dict[str, CallState] = {}
        self._unrecorded: list[Alert] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        """Set when a batch was applied: it wakes the flush task."""
        self._history = asyncio.Lock()
        self._seq = 0
        """The log seq of the last event applied to the core."""
        self._checkpointed = 0
        self._replace = False
        """The stored state was discarded: the next checkpoint rewrites all of it."""
        self._stored: dict[str, set[bytes]] = {name: set() for name in self._stores}
        """The keys the checkpointed state holds: a key made and deleted between two checkpoints
        (a call a replay forgets) costs the checkpoint nothing."""
        self._failed = False
        """A core step raised: the core may hold half a step, so it is never checkpointed."""
        self.ready = False

    async def start(self) -> None:
        """Load the last checkpoint, replay the log after it, publish every rep once (reps
        never published by this engine are all due in the core's refresh), start the timers."""
        started = time.monotonic()
        loaded = await self._load()
        after = self._seq
        replayed = await self._replay()
        await self.flush()
        await self.refresh()
        log.info(
            "log_replayed",
            events=replayed,
            after_seq=after,
            state_keys=loaded,
            seconds=round(time.monotonic() - started, 3),
        )
        self._tasks = [
            # a batch applied wakes the flush at once (the ack never waits for its snapshots),
            # as the Faust worker flushes after each stage-2 batch; the tick is the longest wait
            asyncio.create_task(
                self._every(self.cadence.snapshot_interval, self.flush, wake=self._changed)
            ),
            asyncio.create_task(self._every(self.cadence.rolling_refresh, self.refresh)),
            asyncio.create_task(self._every(self.cadence.alert_evaluation, self.judge)),
            asyncio.create_task(self._every(self.cadence.stale_sweep, self.sweep)),
            asyncio.create_task(self._every(self.checkpoint_seconds, self.maintain)),
        ]
        self.ready = True

    async def stop(self) -> None:
        """Stop the timers, write what is pending and checkpoint."""
        self.ready = False
        for task in self._tasks:
            task.cancel()
        # gather, not `suppress(CancelledError)` around each: a cancel of stop() itself (a
        # shutdown's deadline) must reach its caller, not be taken for a timer's
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()
        try:
            await self.checkpoint()
        except Exception:  # the log holds every event: the next start replays more, loses nothing
            log.exception("checkpoint_failed")
        log.info("engine_stopped", checkpoint_seq=self._checkpointed)

    async def publish(self, events: Sequence[CallEvent]) -> None:
        """EventPublisher: commit to the log, then apply. Returns once durable."""
        async with self._lock:
            appended = await self.log.append(events)
            # the arrival a replay of the log gives them: the same incarnations, the same clock
            self._ingest([(event, appended.received_at, 0) for event in events])
            self._seq = max(self._seq, appended.seq)
        self._changed.set()  # the flush task publishes them now, not at its next tick

    async def publish_roster(self, record: RosterRecord) -> None:
        """RosterPublisher: apply a roster change; the reps it touches go out at the next flush."""
        async with self._lock:
            with self._step():
                self.core.roster_changed(record)

    # -- the core's timers ----------------------------------------------------------------------

    async def flush(self) -> None:
        """Snapshots of changed reps, and the call records of the last interval."""
        await self._sweep(self.core.reps.flush_slices(self.clock()))
        await self._store_records()

    async def refresh(self) -> None:
        """Reps whose numbers moved with time alone."""
        await self._sweep(self.core.reps.refresh_slices(self.clock()))

    async def judge(self) -> None:
        """The alert tick."""
        await self._sweep(self.core.reps.judge_slices(self.clock()))

    async def sweep(self) -> None:
        """Close calls left open too long; forget ended calls past the retention (a slice at a
        time, like the Faust worker; each call is checked again when it is expired)."""
        now = self.clock()
        self.core.calls.caught_up(0, time.time())  # live: every logged event is applied
        parts = self.core.calls.due_slices(now)
        while True:
            async with self._lock:
                with self._step():
                    due = next(parts, None)
                    if due is None:
                        return
                    self._apply(self.core.calls.expire(due, now, time.time()))
            await asyncio.sleep(0)

    async def _sweep(self, parts: Slices) -> None:
        """Run a core sweep a slice at a time under the lock, delivering between slices, so
        accepting events never waits for a sweep over the whole floor."""
        took = None
        with contextlib.closing(parts):  # a flush dropped halfway is over: the next may start
            while True:
                async with self._lock:
                    with self._step():
                        out = next_slice(parts, took)
                    if out is None:
                        return
                    with self._step():
                        self._note(out.alerts)  # stored with the checkpoint that holds this state
                        self.core.reps.delivered(out.alerts)
                began = time.monotonic()
                await self._deliver(out)
                took = time.monotonic() - began  # counts in the flushes' share (`flush_slices`)
                await asyncio.sleep(0)

    async def maintain(self) -> None:
        """The checkpoint timer: checkpoint, then apply the log's retention."""
        await self.checkpoint()
        await self.trim_log()

    # -- checkpoints and retention --------------------------------------------------------------

    async def checkpoint(self) -> bool:
        """Write the keys changed since the last checkpoint and the seq of the last applied
        event, in one transaction, under the lock; False when there was nothing to write.

        The call records and alert transitions the checkpointed state made are stored first:
        a restart replays only the events after the checkpoint and would not make them again.
        When a write fails, its keys are taken again by the next checkpoint."""
        async with self._lock:
            if self._failed:
                log.error("checkpoint_refused", reason="a core step failed", seq=self._seq)
                return False
            await self._store_records()
            if self._unrecorded and self.record_alerts is not None:
                await self.record_alerts(self._unrecorded)
                self._unrecorded = []
            taken = {name: store.take_changed() for name, store in self._stores.items()}
            writes = self._writes(taken)
            if not self._replace and self._seq == self._checkpointed and not any(writes.values()):
                return False
            began = time.monotonic()
            try:
                await self.log.save_checkpoint(
                    self._seq, writes, self._rules, replace=self._replace
                )
            except BaseException:
                for name, store in self._stores.items():
                    store.changed |= taken[name].keys()
                raise
            for name, keys in writes.items():
                stored = self._stored[name]
                if self._replace:
                    stored.clear()
                stored |= {k for k, v in keys.items() if v is not None}
                stored -= {k for k, v in keys.items() if v is None}
            self._checkpointed, self._replace = self._seq, False
            log.debug(
                "checkpoint_written",
                seq=self._seq,
                keys=sum(len(w) for w in writes.values()),
                seconds=round(time.monotonic() - began, 3),
            )
            return True

    def _writes(self, taken: dict[str, dict[bytes, bytes | None]]) -> Changes:
        """What a checkpoint writes: the whole state after a discard, else the taken keys less
        deletions of keys it never held."""
        if self._replace:
            return {name: dict(store.data) for name, store in self._stores.items()}
        return {
            name: {k: v for k, v in keys.items() if v is not None or k in self._stored[name]}
            for name, keys in taken.items()
        }

    async def trim_log(self, now: float | None = None) -> int:
        """Delete the events a checkpoint covers that were received more than `log_retention`
        ago (epoch `now`), a chunk per transaction so the engine's lock is never held long."""
        cutoff = (time.time() if now is None else now) - self.log_retention.total_seconds()
        deleted = 0
        while True:
            async with self._lock:
                chunk = await self.log.trim(cutoff, TRIM_CHUNK)
            deleted += chunk
            if chunk < TRIM_CHUNK:
                break
            await asyncio.sleep(0)  # let publishers in between chunks
        if deleted:
            log.info("log_trimmed", events=deleted)
        return deleted

    async def _replay(self) -> int:
        """Apply the logged events after the current seq, in batches like live traffic.

        A long replay (no checkpoint yet, or one made with other KPI rules) stays bounded in
        memory: the stale sweep runs as the log's arrival times pass (every
        `REPLAY_SWEEP_SECONDS` of them; live it runs every `STALE_SWEEP_SECONDS`, so a call's
        retention may end up to that much later than it did live), stage 2 applies each batch
        as of its events' arrival (so a rep's remembered versions and buckets are pruned as
        they were live, not all kept until the replay ends), and call records go to history
        every `REPLAY_STORE_EVENTS` events."""
        replayed, last, swept = 0, self._seq, 0.0
        batch: list[Incoming] = []
        async for seq, event, received in self.log.replay(after=self._seq):
            if received - swept >= REPLAY_SWEEP_SECONDS:
                replayed += self._ingest(batch, replaying=True)
                batch, swept = [], received
                self._expire(datetime.fromtimestamp(received, UTC))
            batch.append((event, received, 0))
            last = seq
            if len(batch) >= REPLAY_BATCH:
                replayed += self._ingest(batch, replaying=True)
                batch = []
                if len(self._records) >= REPLAY_STORE_EVENTS:
                    await self._store_records()
        replayed += self._ingest(batch, replaying=True)
        self._seq = last
        return replayed

    def _expire(self, now: datetime) -> None:
        """The stale sweep over every call at `now`."""
        with self._step():
            self._apply(self.core.calls.expire(self.core.calls.due(now), now, now.timestamp()))

    async def _load(self) -> int:
        """Fill the stores from the last checkpoint (unless the KPI rules changed since)."""
        checkpoint = await self.log.load_checkpoint()
        if checkpoint is None:
            return 0
        if checkpoint.rules != self._rules:
            # the state was computed with other rules: rebuild it from what the log still holds
            log.warning("checkpoint_discarded", reason="KPI rules changed", seq=checkpoint.seq)
            self._replace = True
            return 0
        for name, key, value in checkpoint.state:
            self._stores[name].data[key] = value  # loaded, not changed: not written back
            self._stored[name].add(key)
        self._seq = self._checkpointed = checkpoint.seq
        self.core.calls.invalidate()  # the calls came in behind the core's index
        return len(checkpoint.state)

    # -- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _step(self) -> Iterator[None]:
        """Around every change of the core: one that raised may have left half a step."""
        try:
            yield
        except Exception:
            self._failed = True
            raise

    def _ingest(self, incoming: list[Incoming], *, replaying: bool = False) -> int:
        """Apply events; a replay's batch as of its last event's arrival (`_replay`)."""
        if incoming:
            now = self.clock()
            if replaying:
                now = min(now, datetime.fromtimestamp(incoming[-1][1], UTC))
            with self._step():
                self._apply(self.core.calls.assemble(incoming), now)
        return len(incoming)

    def _apply(self, batch: CallBatch, now: datetime | None = None) -> None:
        """Stage 2 on the batch's facts, then stage 1's states: the order the Faust driver keeps."""
        self.core.reps.accumulate(batch.facts, now or self.clock())
        self.core.calls.save(batch)
        for state in batch.records:
            self._records[record_id(state)] = state  # the latest version of each call

    def _note(self, alerts: list[Alert]) -> None:
        """Keep alert transitions (under the lock) until a checkpoint has them stored."""
        if self.record_alerts is not None:
            self._unrecorded += alerts

    async def _store_records(self) -> None:
        """Hand the pending call records to history; kept for the next try if that fails."""
        async with self._history:
            if not self._records:
                return
            records, self._records = self._records, {}
            try:
                await self.on_records([call_record(state) for state in records.values()])
            except BaseException:
                for call_id, state in records.items():
                    self._records.setdefault(call_id, state)  # a newer version stays
                raise

    async def _deliver(self, out: Publication) -> None:
        for snap in out.snapshots:
            self.on_snapshot(snap)
        for alert in out.alerts:
            self.on_alert(alert)

    async def _every(
        self,
        seconds: float,
        job: Callable[[], Awaitable[object]],
        wake: asyncio.Event | None = None,
    ) -> None:
        """Run `job` every `seconds`, or as soon as `wake` is set if sooner."""
        while True:
            if wake is None:
                await asyncio.sleep(seconds)
            else:
                # not `asyncio.wait_for`: on Python 3.11 it returns instead of raising when the
                # cancel comes as `wake` fires, and stop() then waited for this loop forever
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds):
                        await wake.wait()
                wake.clear()
            try:
                await job()
            except Exception:  # a failing sink must not stop the engine's clock
                log.exception("engine_job_failed", job=job.__name__)


def _memory(store: Store) -> MemoryStore:
    """The embedded engine checkpoints what changed: its stores must be `MemoryStore`s."""
    if not isinstance(store, MemoryStore):
        raise TypeError(f"the embedded engine needs MemoryStores, got {type(store).__name__}")
    return store
