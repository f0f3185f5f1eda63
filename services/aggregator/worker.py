"""One Faust worker's state and steps: the aggregator core on Faust tables and outboxes.

`app.py` wires these steps to Faust's agents, timers and signals; each step moves bytes between
Kafka and `services.aggregator.core`, which decides everything else. Faust internals are reached
only through `faust_compat`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import Any, NoReturn

import faust
import orjson
import structlog
from pydantic import ValidationError

from schemas.roster import RosterRecord
from services.aggregator import failstop, faust_compat, testhooks
from services.aggregator.config import AggregatorSettings
from services.aggregator.core import (
    Aggregator,
    CallBatch,
    MappingStore,
    Publication,
    Slices,
    cadence_of,
    next_slice,
    rules_of,
)
from services.aggregator.domain.calls import record_id
from services.aggregator.domain.roster import RosterView
from services.aggregator.fence import Fence, trust_limit
from services.aggregator.metrics import Metrics
from services.aggregator.outbox import Outbox
from services.aggregator.packing import SentPacks, encode, grouped, record_json
from services.kit.follow import Follower
from services.kit.kafka import connection
from services.kit.partitioning import partition_for

log = structlog.get_logger(__name__)


class TableStore(MappingStore):
    """A core `Store` on a Faust table: writes go to the table's dict and, as changelog records,
    through the outbox (delivered before Faust commits the offsets)."""

    def __init__(self, table: Any, changelog: Outbox) -> None:
        self.table, self.data, self.changelog = table, faust_compat.table_data(table), changelog

    def written(self, key: bytes, value: bytes | None) -> None:
        self.changelog.add(self.table.changelog_topic.get_topic_name(), key, value)

    def drop_moved(self, topic_partitions: int, mine: set[int]) -> list[bytes]:
        """Forget keys of partitions this worker no longer holds (they replay if they return).

        A store that keeps each partition apart (rocksdb) serves only its active partitions'
        keys: nothing to drop. Going through every key instead took 26 s for a month of
        calls at each rebalance (under load), longer than a session timeout."""
        if faust_compat.partitioned(self.table):
            return []
        moved = [key for key in self.data if partition_for(key, topic_partitions) not in mine]
        for key in moved:
            del self.data[key]
        return moved


class Worker:
    """One worker's named state: the core, its tables, outboxes and the roster follower."""

    def __init__(self, app: faust.App, settings: AggregatorSettings) -> None:
        self.app, self.settings = app, settings
        self.metrics = Metrics()
        session = settings.SESSION_TIMEOUT_SECONDS
        self.fence = Fence(
            functools.partial(faust_compat.membership, app), trust_limit(session), wait=session
        )
        out = self.producer
        self.changelog, self.facts, self.sends = Outbox(out), Outbox(out), Outbox(out)
        self.calls = app.Table(
            "calls", default=None, key_type=bytes, value_type=bytes, use_partitioner=True
        )
        self.reps = app.Table(
            "reps", default=None, key_type=bytes, value_type=bytes, use_partitioner=True
        )
        self.call_store = TableStore(self.calls, self.changelog)
        self.rep_store = TableStore(self.reps, self.changelog)
        roster = RosterView(default_timezone=settings.TIMEZONE)
        self.core = Aggregator.build(
            self.call_store,
            self.rep_store,
            rules=rules_of(settings),
            roster=roster,
            metrics=self.metrics,
            cadence=cadence_of(settings),
        )
        # Rules, targets and agent ids come from the roster: until it is read to the end, a
        # restarted worker would judge alerts without their rules.
        self.roster = Follower(
            connection(settings),
            settings.ROSTER_TOPIC,
            self.on_roster,
            from_beginning=True,
            client_id="callpulse-aggregator",
        )
        self.stage1 = asyncio.Lock()  # the sweep and the agent never interleave on a call
        self.commit_gauges: set[tuple[str, str]] = set()
        self.unconfirmed: list[asyncio.Future[Any]] = []
        """Sends not known to be in Kafka yet (`confirm` awaits them before each commit)."""
        self.metrics.fail_stops.inc(failstop.fail_stops(settings.DATA_DIR))
        self.assembled: dict[Any, int] = {}
        """events partition -> the last offset stage 1 assembled."""
        self.generation = 0
        """Counts revocations: a sweep started before one stops publishing."""
        self.sent_packs = SentPacks()
        """The facts stage 1 sent, for stage 2 to read back without decoding them."""

    def settled(self) -> bool:
        """The roster read, partitions assigned, and every table recovered from its changelog."""
        return (
            self.roster.ready.is_set()
            and self.app.rebalancing is False
            and self.app.consumer is not None
            and not self.app.in_recovery
            and faust_compat.tables_recovered(self.app)
        )

    def on_roster(self, message: Any, catching_up: bool) -> str:
        if message.value is None:
            return "deleted"
        try:
            self.core.roster_changed(RosterRecord.model_validate_json(message.value))
        except ValidationError:
            log.warning("roster_record_invalid", offset=message.offset)
            return "invalid"
        return "applied"

    async def assemble(self, events: list[Any]) -> None:
        """Stage 1 on a batch: facts durable first, then call states, then records."""
        failstop.raise_once("stage1", [e.value for e in events])
        await testhooks.stall()  # CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS
        async with self.stage1:
            batch = self.core.calls.assemble(
                (e.value, e.message.timestamp or time.time(), e.message.partition) for e in events
            )
            for value, reason in batch.invalid:
                self.dead_letter(self.settings.EVENTS_TOPIC, value, f"invalid event: {reason}")
            await self.finish_calls(batch)
            for e in events:
                tp = e.message.tp
                self.assembled[tp] = max(self.assembled.get(tp, -1), e.message.offset)
        for event in batch.too_late:
            log.warning("event_too_late", call_id=event.call_id, event_id=event.event_id)

    async def sweep(self) -> None:
        """Close calls open too long; forget ended calls past the retention (a slice at a
        time, letting the agents run in between; each call is checked again when expired)."""
        now = datetime.now(UTC)
        self.read_to_end(now.timestamp())
        for due in self.core.calls.due_slices(now):
            if due:
                async with self.stage1:
                    await self.finish_calls(self.core.calls.expire(due, now, time.time()))
            await asyncio.sleep(0)

    def read_to_end(self, now: float) -> None:
        """Tell stage 1 which event partitions it has assembled to their end (their clock
        moves on with the wall clock, not only with arrivals)."""
        for tp in self.app.consumer.assignment():
            if tp.topic != self.settings.EVENTS_TOPIC:
                continue
            highwater = self.app.consumer.highwater(tp)
            if highwater is not None and highwater <= self.assembled.get(tp, -1) + 1:
                self.core.calls.caught_up(tp.partition, now)

    async def finish_calls(self, batch: CallBatch) -> None:
        count = self.app.consumer.topic_partitions(self.settings.FACTS_TOPIC)
        for partition, facts in grouped(batch.facts, count or self.settings.PARTITIONS).items():
            value = encode(facts)
            self.facts.add(self.settings.FACTS_TOPIC, None, value, partition)
            self.sent_packs.keep(value, facts)
        await asyncio.gather(*await self.facts.send())
        self.core.calls.save(batch)
        for state in batch.records:
            key = record_id(state).encode()
            self.sends.add(self.settings.CALLS_TOPIC, key, record_json(state))
        await self.send()

    async def accumulate(self, packs: list[bytes]) -> None:
        """Stage 2 on a batch of fact packs (one that does not decode is dead-lettered)."""
        failstop.raise_once("stage2", packs)
        await testhooks.stall()  # CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS
        facts = []
        for value in packs:
            try:
                facts += self.sent_packs.unpack(value)
            except Exception as error:  # any undecodable pack is poison
                self.dead_letter(self.settings.FACTS_TOPIC, value, f"invalid facts pack: {error}")
        self.core.reps.accumulate(facts, datetime.now(UTC))
        await self.send()
        if self.settled():  # the changes go out now, not at the next tick (paced by the core)
            await self.flush()

    def dead_letter(self, topic: str, value: bytes, reason: str) -> None:
        """A message that cannot be applied goes to the dead-letter topic, with why and whence."""
        self.metrics.dead_letters.labels(topic).inc()
        log.warning("dead_lettered", topic=topic, reason=reason)
        record = {"reason": reason, "topic": topic, "value": value.decode("utf-8", "replace")}
        self.sends.add(self.settings.DEAD_LETTERS_TOPIC, topic.encode(), orjson.dumps(record))

    async def producer(self) -> Any:
        """The producer every write goes through, once the fence has proven that this worker
        is still the group member that owns its partitions (`fence.py`); else it stops."""
        if testhooks.fixes_disabled():
            return await faust_compat.producer(self.app)
        await self.fenced()
        producer = await faust_compat.producer(self.app)
        faust_compat.guard_sends(producer, self.fenced)  # records handed over before a freeze
        return producer

    async def fenced(self) -> None:
        """Return once the fence proves this worker still owns its partitions; else stop."""
        stale = await self.fence.check()
        if stale is not None:
            self.fail_stop(f"zombie fence: {stale}")

    async def send(self) -> None:
        """Hand the changelog records, then the other records, to the producer; their delivery
        is confirmed before the next commit of offsets (`confirm`)."""
        self.unconfirmed += await self.changelog.send()
        self.unconfirmed += await self.sends.send()

    async def confirm(self) -> None:
        """Before Faust commits offsets: everything sent is in Kafka, or the worker stops."""
        pending, self.unconfirmed = self.unconfirmed, []
        results = await asyncio.gather(*pending, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                self.fail_stop("a record was not delivered to Kafka", result)
        faust_compat.delivered(self.app, results)

    def observe_commits(self) -> None:
        """Held commits onto the gauge (partitions no longer held go back to 0)."""
        held = {(t, str(p)): s for (t, p), s in faust_compat.held_commits(self.app).items()}
        for labels in self.commit_gauges - set(held):
            self.metrics.commit_held.labels(*labels).set(0)
        for labels, seconds in held.items():
            self.metrics.commit_held.labels(*labels).set(round(seconds, 1))
        self.commit_gauges = set(held)

    def fail_stop(self, reason: str, error: BaseException | None = None) -> NoReturn:
        """Exit at once, committing nothing: the restart reads the failed batch again."""
        testhooks.raise_as_faust(error)  # CALLPULSE_TEST_DISABLE_FIXES: Faust acks it
        failstop.stop(self.settings.DATA_DIR, reason, error)

    async def publish(self, out: Publication) -> None:
        for snap in out.snapshots:
            key, value = snap.rep_id.encode(), snap.model_dump_json().encode()
            self.sends.add(self.settings.KPIS_TOPIC, key, value)
        for alert in out.alerts:
            key, value = alert.rep_id.encode(), alert.model_dump_json().encode()
            self.sends.add(self.settings.ALERTS_TOPIC, key, value)
        await self.send()  # the changelog first: alert states live in the reps
        if out.alerts:  # rare: wait for them, then take them out of the reps' outboxes
            await self.confirm()
            self.core.reps.delivered(out.alerts)
            await self.send()

    async def flush(self) -> None:
        """Snapshots of the reps changed since the last flush."""
        await self.publish_slices(self.core.reps.flush_slices(datetime.now(UTC)))

    async def refresh(self) -> None:
        """Reps whose numbers moved with time alone."""
        await self.publish_slices(self.core.reps.refresh_slices(datetime.now(UTC)))

    async def judge(self) -> None:
        """The alert tick."""
        await self.publish_slices(self.core.reps.judge_slices(datetime.now(UTC)))

    async def publish_slices(self, parts: Slices) -> None:
        """Publish slice by slice: a sweep over a big floor must not stall the streams. A sweep
        that a rebalance interrupts stops: its reps may belong to another worker now, whose
        snapshots a late one of ours would overwrite. The core then forgets what it published,
        so the next refresh publishes every rep still held (an interrupted flush took its reps
        off the dirty list)."""
        generation = self.generation
        current = functools.partial(self.holds, generation)
        with closing(parts):  # a flush dropped halfway is over: the next may start
            if not await publish_while(parts, current, self.publish):
                self.core.reps.forget()

    def holds(self, generation: int) -> bool:
        """No revocation since `generation`, and settled: the reps held are still ours."""
        return self.generation == generation and self.settled()

    def revoked(self, sender: Any, /, *args: Any, **_kwargs: Any) -> None:
        """Partitions may move: the tables are the truth, not decoded copies."""
        self.generation += 1
        self.core.reps.forget()
        self.core.calls.invalidate()

    def assigned(self, sender: Any, /, *args: Any, **_kwargs: Any) -> None:
        """Forget the keys of partitions that moved to another worker: Faust's store keeps every
        key this worker wrote, and the refresh would republish stale snapshots over the owner's.
        Faust sends the new assignment, a set of TPs."""
        assigned: set[Any] = args[0]
        self.core.calls.invalidate()  # recovery fills the calls table behind the core
        for store, topic in (
            (self.call_store, self.settings.EVENTS_TOPIC),
            (self.rep_store, self.settings.FACTS_TOPIC),
        ):
            count = self.app.consumer.topic_partitions(topic) or self.settings.PARTITIONS
            mine = {tp.partition for tp in assigned if tp.topic == topic}
            moved = store.drop_moved(count, mine)
            if store is self.rep_store:
                self.core.reps.forget(key.decode() for key in moved)
            if moved:
                log.info("moved_keys_dropped", table=store.table.name, keys=len(moved))


async def publish_while(
    parts: Slices,
    current: Callable[[], bool],
    publish: Callable[[Publication], Awaitable[None]],
) -> bool:
    """Publish the slices while `current()` holds; whether all were published.

    A slice is built (`next`) only once it is known to go out: the core records a rep as
    published when it builds its snapshot, and a slice built and then dropped would leave
    reps whose last snapshot on the topic is older than the core believes (soak run 29 of
    2026-12-02: rolling windows shown high after a rebalance, never refreshed)."""
    took = None
    while current():
        part = next_slice(parts, took)  # with how long the one before took (flush pacing)
        if part is None:
            return True
        began = time.monotonic()
        await publish(part)
        took = time.monotonic() - began
        await asyncio.sleep(0)
    return False
