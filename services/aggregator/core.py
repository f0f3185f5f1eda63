"""The aggregator core: the whole composition of the KPI domain, for every driver.

The Faust worker and the embedded engine only feed it (events, facts, roster records, the
time) and carry out what it returns (send facts, publish snapshots, call records and alerts).
Everything else is decided here, once:

- stage 1 (`CallStage`, keyed by call): assemble events into calls, the facts each new call
  version credits, the call records for history; close calls left open past
  `max_call_seconds`, forget ended ones past the retention;
- stage 2 (`RepStage`, keyed by rep): apply facts to rep states, which reps to snapshot and
  when (changed reps coalesced per flush and paced to a share of the worker's time; a rolling
  refresh of reps whose numbers can move without events; reps a roster change touches, at
  once), and the alert rules, judged whenever a rep's snapshot is built and on every alert tick.

State lives in `Store`s of encoded bytes (a Faust table's data, a dict the embedded engine
checkpoints): a driver can persist it without knowing its shape. No framework is imported here
(import-linter checks it), and time is always passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from schemas import windows as w
from schemas.alerts import Alert
from schemas.events import CallEvent, event_from_json
from schemas.kpis import RepSnapshot
from schemas.roster import RosterRecord
from services.aggregator.domain.alerts import evaluate
from services.aggregator.domain.calls import (
    CallState,
    RepFact,
    Rules,
    apply_event,
    close_if_stale,
    forget,
    forgettable,
    past_retention,
    too_late,
)
from services.aggregator.domain.rep import (
    Context,
    RepState,
    apply_fact,
    prune,
    signature,
    snapshot,
    window_plans,
)
from services.aggregator.domain.roster import RosterView
from services.aggregator.due import DueAt, DueIndex, due_at
from services.aggregator.metrics import Metrics
from services.aggregator.packing import dumps, loads, state_json


class Store(Protocol):
    """A table of encoded states by key; a `None` value deletes the key."""

    def get(self, key: bytes) -> bytes | None:
        """The stored value, or None."""

    def put(self, key: bytes, value: bytes | None) -> None:
        """Set or (None) delete a key."""

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every key and value (a copy: the caller may put while iterating)."""

    def stored_keys(self) -> Iterable[bytes]:
        """Every key (a copy), without reading the values (an on-disk table keeps them there)."""


class MappingStore:
    """A `Store` over a mutable mapping; subclasses hear of each write (`written`)."""

    data: MutableMapping[bytes, bytes]

    def get(self, key: bytes) -> bytes | None:
        """The stored value, or None."""
        return self.data.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        """Set or (None) delete a key."""
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
        self.written(key, value)

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every key and value."""
        return list(self.data.items())

    def stored_keys(self) -> list[bytes]:
        """Every key (not `list(keys())`: that asks the size first, another pass on disk)."""
        return list(iter(self.data))

    def written(self, key: bytes, value: bytes | None) -> None:
        """A key was set (or, None, deleted)."""


@dataclass(slots=True)
class MemoryStore(MappingStore):
    """A `Store` in a dict; `changed` collects the keys written since `take_changed()`."""

    data: dict[bytes, bytes] = field(default_factory=dict)
    changed: set[bytes] = field(default_factory=set)

    def written(self, key: bytes, value: bytes | None) -> None:
        """Remember the key for the next `take_changed()`."""
        self.changed.add(key)

    def take_changed(self) -> dict[bytes, bytes | None]:
        """The keys written since the last call, with their values now (None: deleted)."""
        keys, self.changed = self.changed, set()
        return {key: self.data.get(key) for key in keys}


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often each timer of the core runs, in seconds (the aggregator settings)."""

    snapshot_interval: float = 0.1
    rolling_refresh: float = 15.0
    alert_evaluation: float = 10.0
    stale_sweep: float = 60.0
    snapshot_share: float = 0.05
    """The most of a worker's time snapshot flushes may take while it is behind (a third while
    it keeps up: `KEEPING_UP_SHARE`)."""


Incoming = tuple[CallEvent | bytes, float, int]
"""An event (decoded, or the JSON of a topic record), when it arrived (epoch seconds) and the
partition (of the driver's input) it was read from."""
Fact = tuple[RepFact, float | None]
"""A fact and the arrival time of the event that made it (None: not from a fresh event)."""


@dataclass(slots=True)
class CallBatch:
    """What stage 1 made of a batch: facts to deliver first, then states to save, records."""

    facts: list[tuple[RepFact, float]] = field(default_factory=list)
    states: dict[str, CallState | None] = field(default_factory=dict)
    records: list[CallState] = field(default_factory=list)
    """The call versions whose record goes to history (`call_record`; the Faust driver encodes
    them straight to JSON, `packing.record_json`)."""
    invalid: list[tuple[bytes, str]] = field(default_factory=list)
    """Records that are not a valid event, and why: for the dead-letter topic."""
    too_late: list[CallEvent] = field(default_factory=list)
    """Events that arrived too long after they occurred for a call not held: their call goes
    to history only, not to the live windows."""


class CallStage:
    """Stage 1: events into calls (per call id), and the facts each call version credits.

    A batch reads each call once and saves it once. A driver must make the facts durable
    before it saves the states (`save`): a crash in between redoes the batch from the old
    states and makes the same versions, which stage 2 applies once.

    An ended call is forgotten by the clock of its input partition: the latest arrival read
    from it (`read`), or the time the driver says the partition was read to its end
    (`caught_up`), never the wall clock alone. Forgetting keeps the call's event ids for
    `forgotten_retention_seconds` more: an event among them is a duplicate, any other starts a
    new incarnation of the call. Every event still unread when those go arrives later, so an
    event of such a call arrived more than both retentions after it occurred: a call first
    seen by an event that late (`too_late`: a backfill, or a replay of a call gone for good)
    goes to history only, where a record never replaces a newer version, and never to the
    live windows, so nothing is ever counted twice.
    """

    def __init__(self, store: Store, rules: Rules, roster: RosterView, metrics: Metrics) -> None:
        self.store, self.rules, self.roster, self.metrics = store, rules, roster, metrics
        self.read: dict[int, float] = {}
        """partition -> how far it has been read (an arrival time, epoch seconds)."""
        self._due = DueIndex()
        self._indexed = False
        """Whether `_due` holds every stored call (not before a sweep read them all)."""
        self._generation = 0
        """Counts `invalidate()`s: an index build started before one is abandoned."""
        self._decoded: dict[bytes, CallState] = {}
        """The calls saved last, decoded (at most `DECODED_CALLS`, oldest saved out first):
        the next event of a call skips the store read and the decode. A state is never
        changed in place (`apply_event` changes a copy), so each equals its stored form."""

    def invalidate(self) -> None:
        """The store changed behind the core (a checkpoint loaded, partitions moved or
        recovered): the next sweep reads every call again to know when each is due, and
        every call is read from the store again."""
        self._due, self._indexed = DueIndex(), False
        self._decoded.clear()
        self._generation += 1

    def caught_up(self, partition: int, now: float) -> None:
        """The partition has been read to its end at `now`: nothing unread arrived before."""
        self.read[partition] = max(self.read.get(partition, now), now)

    def assemble(self, batch: Iterable[Incoming]) -> CallBatch:
        """Fold a batch of events into their calls; nothing is saved yet."""
        out = CallBatch()
        loaded: dict[str, CallState | None] = {}
        applied = duplicates = 0
        for raw, arrived, partition in batch:
            event = self._decode(raw, out)
            if arrived > self.read.get(partition, 0.0):
                self.read[partition] = arrived
            if event is None:
                continue
            event = self.roster.resolve(event)  # a provider's agent id -> our rep id
            if event.call_id not in loaded:
                loaded[event.call_id] = self._load(event.call_id)
            state = loaded[event.call_id]
            backfill = state is None and too_late(event, arrived, self.rules)
            if backfill:
                self.metrics.events_too_late.inc()
                out.too_late.append(event)
            step = apply_event(state, event, self.rules, arrived, partition, backfill=backfill)
            if not step.state.history_only:
                out.facts += [(fact, arrived) for fact in step.facts]
            if step.duplicate:
                duplicates += 1
                continue
            applied += 1
            loaded[event.call_id] = out.states[event.call_id] = step.state
            out.records.append(step.state)
        self.metrics.events_applied.inc(applied)  # once a batch: a tenth of a lock per event
        self.metrics.events_duplicate.inc(duplicates)
        return out

    def save(self, batch: CallBatch) -> None:
        """Write the batch's call states (after its facts are durable)."""
        decoded = self._decoded
        for call_id, state in batch.states.items():
            key = call_id.encode()
            self.store.put(key, None if state is None else state_json(state))
            self._due.note(key, None if state is None else due_at(state, self.rules))
            decoded.pop(key, None)  # re-inserted last: the oldest saved go first
            if state is not None:
                decoded[key] = state
        while len(decoded) > DECODED_CALLS:
            del decoded[next(iter(decoded))]

    def due(self, now: datetime) -> list[str]:
        """Calls open past `max_call_seconds`, or ended past the retention (by the index)."""
        return [call_id for part in self.due_slices(now) for call_id in part]

    def due_slices(self, now: datetime) -> Iterator[list[str]]:
        """`due` a slice of the calls at a time: a driver lets its event loop run in between.

        The first sweep after `invalidate()` reads every stored call to index it, a slice at a
        time (empty slices: listing every value of a month's 375,000 calls from an on-disk
        table at once held the event loop for seconds); it stops if the store is invalidated
        again meanwhile. Calls saved meanwhile are indexed by `save`."""
        generation = self._generation
        if not self._indexed:
            for part in slices(self.store.stored_keys()):
                for key in part:
                    self._due.note(key, self._due_at(key))
                yield []
                if self._generation != generation:
                    return
            self._indexed = True
        due = self._due.candidates(now.timestamp(), self.read, self._due_at)
        yield from slices(key.decode() for key in due)

    def _due_at(self, key: bytes) -> DueAt | None:
        state = self._read(key)
        return None if state is None else due_at(state, self.rules)

    def expire(self, call_ids: Iterable[str], now: datetime, arrived: float) -> CallBatch:
        """Close stale calls as `failed`; forget ended calls past the retention (by the clock
        of their partition)."""
        out = CallBatch()
        for call_id in call_ids:
            state = self._load(call_id)
            if state is None:
                continue
            read = self.read.get(state.partition)
            if state.forgotten:
                if read is not None and past_retention(state, _utc(read), self.rules):
                    out.states[call_id] = None  # its events can no longer come back uncounted
                continue
            if read is not None and forgettable(state, _utc(read), self.rules):
                out.states[call_id] = forget(state)
                continue
            step = close_if_stale(state, now, self.rules)
            if step is not None:
                out.facts += [(fact, arrived) for fact in step.facts]
                out.states[call_id] = step.state
                out.records.append(step.state)
        return out

    def _load(self, call_id: str) -> CallState | None:
        return self._read(call_id.encode())

    def _read(self, key: bytes) -> CallState | None:
        state = self._decoded.get(key)
        if state is not None:
            return state
        raw = self.store.get(key)
        return None if raw is None else CallState.from_dict(loads(raw))

    def _decode(self, raw: CallEvent | bytes, out: CallBatch) -> CallEvent | None:
        if not isinstance(raw, bytes):
            return raw
        try:
            return event_from_json(raw)
        except ValidationError as error:
            self.metrics.events_invalid.inc()
            out.invalid.append((raw, _reason(error)))
            return None


def _outbox_key(alert: Alert) -> str:
    return f"{alert.alert_id}/{alert.state}"


def _reason(error: ValidationError) -> str:
    """The first problems of a validation error, in one line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:3]
    )


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(slots=True)
class Publication:
    """What a rep stage step gives the world: snapshots (for the kpis topic or the read model)
    and alert transitions (each with a stable id, so a redelivered one changes nothing)."""

    snapshots: list[RepSnapshot] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    @classmethod
    def merge(cls, parts: Iterable[Publication]) -> Publication:
        """One publication of many slices'."""
        out = cls()
        for part in parts:
            out.snapshots += part.snapshots
            out.alerts += part.alerts
        return out


Slices = Generator[Publication, float | None, None]
"""A sweep over the reps, a slice at a time. The driver sends back the seconds it took to
deliver each slice (`send(seconds)`; `next()` counts none); one that stops early closes it."""


def next_slice(parts: Slices, delivered: float | None = None) -> Publication | None:
    """A sweep's next slice, or None once it is over; `delivered`: the seconds the driver took
    to deliver the slice before (None for the first)."""
    try:
        return parts.send(delivered)
    except StopIteration:
        return None


class RepStage:
    """Stage 2: facts into rep states (per rep id), snapshots, alerts.

    Facts apply once per (call, version). Snapshots of changed reps are coalesced until the
    next `flush`; the rolling `refresh` rebuilds only reps whose numbers can change with time
    alone. Alert rules are judged on every snapshot built and on every `judge` tick; a rule's
    state lives in the rep's state, so a re-evaluation never notifies twice.
    """

    def __init__(
        self,
        store: Store,
        roster: RosterView,
        metrics: Metrics,
        cadence: Cadence = Cadence(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.roster, self.metrics = store, roster, metrics
        self.cadence, self.clock = cadence, clock
        self.live: dict[str, RepState] = {}
        """Decoded states of the reps this worker holds; the store is the truth."""
        self.dirty: dict[str, float] = {}
        """rep -> arrival time of its oldest change not yet in a published snapshot."""
        self.published: dict[str, tuple[int, datetime, int]] = {}
        """rep -> its last snapshot's signature, the start of its local hour and its minute."""
        self.teams: dict[str, str | None] = {}
        """rep -> the team its last snapshot showed (which reps a team's roster change touches)."""
        self.shapes: dict[str, tuple[tuple[int, ...], str, str | None]] = {}
        """rep -> its minute buckets, status and team when last published: what the refresh
        asks of a rep (`_may_move`) without decoding it. A change since makes the rep dirty,
        and the refresh leaves dirty reps to the flush."""
        self.pruned: dict[str, int] = {}
        """rep -> the epoch minute its buckets were last pruned."""
        self.next_flush = 0.0
        """When the next flush may start while the worker keeps up (monotonic, `clock`)."""
        self.next_flush_behind = 0.0
        """When the next flush may start while the worker is behind."""
        self.newest = 0.0
        """The latest arrival (epoch seconds) of a change made dirty: a worker whose newest
        change arrived over `BEHIND_SECONDS` ago is reading a backlog."""
        self.flushing = False
        """Whether a flush is under way: a driver that asks for another meanwhile (a timer while
        the flush after a batch publishes its slices) gets nothing, or the two would each take
        their share of the worker's time (py-spy, 2026-12-05: flushes took ~20 % of a draining
        worker's time at a 5 % share)."""
        self.unsent: set[str] | None = None
        """Reps with alert transitions not known to be delivered (None: not looked for yet)."""

    # -- facts and the roster -----------------------------------------------------------------

    def accumulate(self, facts: Iterable[Fact], now: datetime) -> set[str]:
        """Apply facts (each once per call version) and save every touched rep once, pruned
        as of `now` (at most once a minute each): a long replay, which publishes nothing until
        it ends, would otherwise grow every rep it touches with buckets and versions past
        their retention, and save all of them again at every batch."""
        touched: set[str] = set()
        applied = duplicates = 0
        for fact, arrived in facts:
            state = self.state(fact.rep_id)
            ctx = self.roster.context(fact.rep_id, fact.team_id or state.team_id)
            if not apply_fact(state, fact, ZoneInfo(ctx.timezone), now):
                duplicates += 1
                continue
            applied += 1
            touched.add(fact.rep_id)
            arrived = arrived if arrived is not None else time.time()
            self.dirty.setdefault(fact.rep_id, arrived)
            self.newest = max(self.newest, arrived)
        for rep_id in touched:
            self._prune(rep_id, now)
            self.save(rep_id)
        self.metrics.facts_duplicate.inc(duplicates)
        self.metrics.facts_applied.inc(applied)
        return touched

    def roster_changed(self, record: RosterRecord) -> set[str]:
        """Apply a roster record; the published reps it touches (the rep, or every rep of the
        team, named by the record) are published again at the next flush. Reps not published
        yet by this worker go out at the next refresh anyway."""
        self.roster.apply(record)
        reps, teams = _subjects(record)
        touched = {rep_id for rep_id in reps if rep_id in self.published}
        touched |= {rep_id for rep_id, team in self.teams.items() if team in teams}
        arrived = time.time()
        for rep_id in touched:
            self.dirty.setdefault(rep_id, arrived)
        if touched:
            self.newest = max(self.newest, arrived)
        return touched

    # -- snapshots and alerts -----------------------------------------------------------------

    def flush(self, now: datetime) -> Publication:
        """Snapshots of the reps changed since the last flush (and their alerts)."""
        return Publication.merge(self.flush_slices(now))

    def flush_slices(self, now: datetime) -> Slices:
        """`flush` a slice of the reps at a time (a driver lets its event loop run between).

        When a flush takes long, the next one waits so that flushes take at most a share of
        the worker's time: a third while it keeps up, `snapshot_share` while it is behind (the
        newest change it applied arrived more than `BEHIND_SECONDS` ago: a worker reading a
        backlog, which coalesces each rep's changes for longer and drains faster). Which share
        applies is decided when the next flush is asked for, not when the last one ended: a
        worker that was behind for a moment (a pause, a rebalance) flushes its fresh changes
        at the keeping-up pace at once, instead of waiting 19 times its last flush. What
        counts is the time spent building the slices and the time the driver says it took to
        deliver them, not the rest of the time between them, which the worker spends on its
        other work."""
        if self.flushing or not self.dirty:
            return
        behind = now.timestamp() - self.newest > BEHIND_SECONDS
        if self.clock() < (self.next_flush_behind if behind else self.next_flush):
            return
        batch, self.dirty = self.dirty, {}
        spent = 0.0
        self.flushing = True
        try:
            for part in slices(batch.items()):
                began = self.clock()
                out = Publication()
                for rep_id, arrived in part:
                    self._publish(rep_id, now, arrived, out, force=True)
                spent += self.clock() - began
                delivered = yield out
                spent += delivered or 0.0
        finally:  # also when the driver drops the rest (closing the generator)
            self.flushing = False
            ended = self.clock()
            self.next_flush = ended + spent * (1 / KEEPING_UP_SHARE - 1)
            self.next_flush_behind = ended + spent * (1 / self.cadence.snapshot_share - 1)

    def refresh(self, now: datetime) -> Publication:
        """Republish reps whose numbers moved with time alone (rolling windows, a new hour or
        day, wrap-up turning idle, the expected share of a target) — and only if they did."""
        return Publication.merge(self.refresh_slices(now))

    def refresh_slices(self, now: datetime) -> Slices:
        """`refresh` a slice of the reps at a time."""
        held = self.held()
        for part in slices(held):
            out = Publication()
            with self._visiting(part):
                for rep_id in part:
                    if rep_id not in self.dirty and self._may_move(rep_id, now):
                        self._publish(rep_id, now, None, out, force=False)
            yield out
        self.metrics.reps.set(len(held))

    def judge(self, now: datetime) -> list[Alert]:
        """Time moves rules (pace, idle, missed): judge every rep that has rules or alerts."""
        return Publication.merge(self.judge_slices(now)).alerts

    def judge_slices(self, now: datetime) -> Slices:
        """`judge` a slice of the reps at a time (first, alerts not delivered yet, again)."""
        if self.unsent is None:  # after a start or a rebalance: look in the store, a slice a time
            self.unsent = set()
            for _ in self._find_unsent(self.unsent):
                yield Publication()
        yield Publication(alerts=self.undelivered(now))
        rules = any(self.roster.team_rules.values()) or any(self.roster.rep_rules.values())
        for part in slices(self.held()):
            out = Publication()
            with self._visiting(part):
                for rep_id in part:
                    if not (rules or rep_id in self.live or self._alerting(rep_id)):
                        continue  # no rule anywhere and no rule state: nothing to decode
                    state = self.state(rep_id)
                    ctx = self.context(rep_id, state)
                    if ctx.alert_rules or state.alerts:
                        snap = snapshot(state, ctx, now, 0.0)
                        out.alerts += self._judge(rep_id, state, ctx, snap, now)
            yield out

    def snapshot(self, rep_id: str, now: datetime) -> RepSnapshot:
        """The rep's snapshot at `now`, without publishing it."""
        state = self.state(rep_id)
        return snapshot(state, self.context(rep_id, state), now, 0.0)

    # -- state --------------------------------------------------------------------------------

    def held(self) -> list[str]:
        """Every rep in the store."""
        return [key.decode() for key in self.store.stored_keys()]

    def state(self, rep_id: str) -> RepState:
        """The rep's decoded state (a new one if the store has none)."""
        state = self.live.get(rep_id)
        if state is None:
            raw = self.store.get(rep_id.encode())
            state = RepState.from_dict(loads(raw)) if raw else RepState(rep_id=rep_id)
            self.live[rep_id] = state
        return state

    def _alerting(self, rep_id: str) -> bool:
        """Whether the rep's stored state holds any alert rule's state (without decoding it)."""
        raw = self.store.get(rep_id.encode())
        return raw is not None and b',"alerts":{},"outbox":' not in raw

    @contextmanager
    def _visiting(self, rep_ids: list[str]) -> Iterator[None]:
        """Decode the reps a timer visits only for the visit: a month of a rep decoded is ~44 KB
        of Python objects, so keeping every held rep decoded after a refresh or an alert tick
        took ~440 MB for 10,000 reps. A rep already decoded (it had facts) stays; one decoded
        for the visit goes again, with its prune mark (its stored state is not pruned). Its
        decoded copy always equals its stored state but for that pruning: every change is
        saved at once (`accumulate`, `_judge`, `delivered`)."""
        visiting = {rep_id for rep_id in rep_ids if rep_id not in self.live}
        try:
            yield
        finally:
            for rep_id in visiting:
                if rep_id not in self.dirty:
                    self.live.pop(rep_id, None)
                    self.pruned.pop(rep_id, None)

    def save(self, rep_id: str) -> None:
        """Write the rep's state to the store."""
        self.store.put(rep_id.encode(), dumps(self.state(rep_id).to_dict()))

    def context(self, rep_id: str, state: RepState) -> Context:
        """What the roster says about the rep now."""
        return self.roster.context(rep_id, state.team_id)

    def forget(self, rep_ids: Iterable[str] | None = None) -> None:
        """Drop decoded copies and publication memory (all, or of reps that moved away)."""
        self.unsent = None  # found again in the store: reps may have moved
        if rep_ids is None:
            self.live.clear()
            self.published.clear()
            self.teams.clear()
            self.shapes.clear()
            self.pruned.clear()
            return
        for rep_id in rep_ids:
            self.live.pop(rep_id, None)
            self.published.pop(rep_id, None)
            self.teams.pop(rep_id, None)
            self.shapes.pop(rep_id, None)
            self.pruned.pop(rep_id, None)
            self.dirty.pop(rep_id, None)

    def _may_move(self, rep_id: str, now: datetime) -> bool:
        last, shape = self.published.get(rep_id), self.shapes.get(rep_id)
        if last is None or shape is None:
            return True  # never published by this worker: once after a start or a move
        minutes, status, team_id = shape
        ctx = self.roster.context(rep_id, team_id)
        return (
            _left_rolling(minutes, last[2], w.epoch_minute(now))
            or status == "wrap_up"  # turns idle after a while
            or bool(ctx.targets)  # the expected share of a target grows during the shift
            or _hour_start(ctx.timezone, now) != last[1]  # a new local hour (and day)
        )

    def _prune(self, rep_id: str, now: datetime) -> int:
        """Prune the rep's buckets and versions as of `now`, once per minute (buckets leave
        their retention by the minute); the epoch minute of `now`."""
        minute = w.epoch_minute(now)
        if self.pruned.get(rep_id) != minute:
            state = self.state(rep_id)
            prune(state, ZoneInfo(self.context(rep_id, state).timezone), now)
            self.pruned[rep_id] = minute
        return minute

    def _publish(
        self, rep_id: str, now: datetime, arrived: float | None, out: Publication, *, force: bool
    ) -> None:
        state = self.state(rep_id)
        ctx = self.context(rep_id, state)
        minute = self._prune(rep_id, now)
        lag = 0.0 if arrived is None else max(0.0, now.timestamp() - arrived)
        snap = snapshot(state, ctx, now, lag)
        if ctx.alert_rules or state.alerts:
            out.alerts += self._judge(rep_id, state, ctx, snap, now)
        body = signature(snap)
        last = self.published.get(rep_id)
        self.published[rep_id] = (body, _hour_start(ctx.timezone, now), minute)
        self.teams[rep_id] = snap.team_id
        self.shapes[rep_id] = (tuple(state.minutes), state.status, state.team_id)
        if not force and last is not None and last[0] == body:
            return  # built as of now, but nothing a wallboard shows changed
        out.snapshots.append(snap)
        self.metrics.snapshots.inc()
        if arrived is not None:
            self.metrics.lag.observe(lag)

    def _judge(
        self, rep_id: str, state: RepState, ctx: Context, snap: RepSnapshot, now: datetime
    ) -> list[Alert]:
        fired = evaluate(state.alerts, ctx.alert_rules, snap, ctx.shift, ctx.targets, now)
        if fired:
            for alert in fired:
                self.metrics.alerts.labels(alert.kind, alert.state).inc()
                state.outbox[_outbox_key(alert)] = [now.timestamp(), alert.model_dump_json()]
            self.save(rep_id)  # the rules' state and the news, in one write
            if self.unsent is not None:
                self.unsent.add(rep_id)
        return fired

    # -- alert delivery ---------------------------------------------------------------------

    def delivered(self, alerts: Iterable[Alert]) -> None:
        """The driver has these alert transitions delivered: take them out of the reps' outboxes."""
        for alert in alerts:
            state = self.state(alert.rep_id)
            if state.outbox.pop(_outbox_key(alert), None) is not None:
                self.save(alert.rep_id)
            if not state.outbox and self.unsent is not None:
                self.unsent.discard(alert.rep_id)

    def _find_unsent(self, found: set[str]) -> Iterator[None]:
        """Add to `found` the reps whose stored state holds undelivered alert transitions, a
        slice of keys at a time (alerts fired meanwhile are added to it as usual)."""
        for keys in slices(self.store.stored_keys()):
            found |= {key.decode() for key in keys if _queued(self.store.get(key))}
            yield

    def undelivered(self, now: datetime) -> list[Alert]:
        """Alert transitions queued at least one alert tick ago and still not delivered (a
        worker killed between saving a rep and sending its alerts): to send again."""
        unsent = self.unsent
        if unsent is None:  # after a start or a rebalance: find them in the store
            unsent = self.unsent = set()
            for _ in self._find_unsent(unsent):
                pass
        due = now.timestamp() - self.cadence.alert_evaluation
        out = []
        for rep_id in list(unsent):
            outbox = self.state(rep_id).outbox
            if not outbox:
                unsent.discard(rep_id)
            out += [Alert.model_validate_json(raw) for at, raw in outbox.values() if at <= due]
        return out


def _queued(raw: bytes | None) -> bool:
    """Whether a stored rep state has alert transitions in its outbox (without decoding it)."""
    return raw is not None and b'"outbox":{"' in raw


DECODED_CALLS = 20_000
"""Decoded call states stage 1 keeps (`CallStage._decoded`): a floor's open calls, one per
rep for 20,000 reps. Reading and decoding a call took ~a fifth of stage 1 (py-spy, 2026-12-05)."""

KEEPING_UP_SHARE = 1 / 3
"""The most of a worker's time snapshot flushes take while it keeps up: a flush's waits grow
with the cost of the flush before, so a small share would turn a garbage collection during one
into a second without snapshots (`make bench`, 2026-12-04: end to end p99 1.9 s at 500 events/s
with 0.05 whatever the lag, 0.39 s with a third)."""
BEHIND_SECONDS = 5.0
"""A worker whose newest change arrived longer ago than this is catching up on a backlog.
Not less: on a busy machine an event can take 2-3 s from ingest to stage 2 without any
backlog (`make bench` end to end, 2026-12-05: three services, the client and the broker on two
cores), and at 1 s such a worker flushed at the snapshot share, waiting 19 times each flush:
snapshots 4-9 s old, p99 over 10 s in one run of three."""

SLICE = 500
"""Reps or calls per slice of a sweep: a few ms of work between two turns of the event loop."""

Item = TypeVar("Item")


def slices(items: Iterable[Item], size: int = SLICE) -> Iterator[list[Item]]:
    """Consecutive lists of at most `size` items (the items are read up front)."""
    whole = list(items)
    for first in range(0, len(whole), size):
        yield whole[first : first + size]


def _subjects(record: RosterRecord) -> tuple[set[str], set[str]]:
    """The reps and the teams a roster record is about."""
    reps, teams = set(), set()
    if record.rep is not None:
        reps.add(record.rep.rep_id)
    if record.team is not None:
        teams.add(record.team.team_id)
    for subject in (record.targets, record.alert_rules):
        if subject is not None:
            (reps if subject.subject == "rep" else teams).add(subject.subject_id)
    return reps, teams


ROLLING_SPANS = tuple(w.ROLLING_MINUTES.values())


def _left_rolling(minutes: Iterable[int], then: int, now: int) -> bool:
    """Whether a minute bucket left a rolling window between two epoch minutes (buckets that
    enter one come with facts, which publish the rep anyway)."""
    if then == now:
        return False
    return any(then - span < m <= now - span for span in ROLLING_SPANS for m in minutes)


def _hour_start(timezone: str, now: datetime) -> datetime:
    """The start of the local hour at `now` (cached per minute and zone with the window plans)."""
    for plan in window_plans(ZoneInfo(timezone), w.epoch_minute(now)):
        if plan.window == "hour":
            return plan.start
    raise AssertionError("every window plan has an hour")  # pragma: no cover


@dataclass(slots=True)
class Aggregator:
    """Both stages over one roster: what a driver builds and feeds."""

    calls: CallStage
    reps: RepStage
    roster: RosterView

    @classmethod
    def build(
        cls,
        calls: Store,
        reps: Store,
        *,
        rules: Rules,
        roster: RosterView,
        metrics: Metrics,
        cadence: Cadence = Cadence(),
        clock: Callable[[], float] = time.monotonic,
    ) -> Aggregator:
        """Both stages on their stores."""
        return cls(
            CallStage(calls, rules, roster, metrics),
            RepStage(reps, roster, metrics, cadence, clock),
            roster,
        )

    def roster_changed(self, record: RosterRecord) -> set[str]:
        """A roster record for both stages (stage 1 resolves agent ids through it)."""
        return self.reps.roster_changed(record)


class CoreSettings(Protocol):
    """The aggregator settings the core follows (both drivers pass theirs)."""

    CONVERSATION_MIN_SECONDS: float
    MAX_CALL_SECONDS: float
    CALL_RETENTION_SECONDS: float
    FORGOTTEN_CALL_RETENTION_SECONDS: float
    SNAPSHOT_INTERVAL_SECONDS: float
    SNAPSHOT_SHARE: float
    ROLLING_REFRESH_SECONDS: float
    ALERT_EVALUATION_SECONDS: float
    STALE_SWEEP_SECONDS: float


def rules_of(settings: CoreSettings) -> Rules:
    """The KPI rules a service's settings name."""
    return Rules(
        conversation_min_seconds=settings.CONVERSATION_MIN_SECONDS,
        max_call_seconds=settings.MAX_CALL_SECONDS,
        call_retention_seconds=settings.CALL_RETENTION_SECONDS,
        forgotten_retention_seconds=settings.FORGOTTEN_CALL_RETENTION_SECONDS,
    )


def cadence_of(settings: CoreSettings) -> Cadence:
    """The timers' intervals a service's settings name."""
    return Cadence(
        snapshot_interval=settings.SNAPSHOT_INTERVAL_SECONDS,
        rolling_refresh=settings.ROLLING_REFRESH_SECONDS,
        alert_evaluation=settings.ALERT_EVALUATION_SECONDS,
        stale_sweep=settings.STALE_SWEEP_SECONDS,
        snapshot_share=settings.SNAPSHOT_SHARE,
    )
