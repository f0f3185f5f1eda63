"""The Faust app: stage 1 (calls table, key call_id) and stage 2 (reps table, key rep_id).

Agents only decode, read the table, call the pure domain, write the table and send. State lives
in plain tables backed by changelogs; windows are our own buckets inside the values.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import faust
import structlog
import uvloop
from faust.exceptions import NotReady
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import ValidationError

from schemas.events import event_from_json
from schemas.roster import RosterRecord
from services.aggregator.config import AggregatorSettings
from services.aggregator.domain.alerts import evaluate
from services.aggregator.domain.calls import (
    CallState,
    RepFact,
    Rules,
    apply_event,
    call_record,
    close_if_stale,
    forgettable,
)
from services.aggregator.domain.rep import RepState, apply_fact, prune, signature, snapshot
from services.aggregator.domain.roster import RosterView
from services.aggregator.outbox import Outbox
from services.aggregator.packing import dumps, loads, pack, unpack
from services.aggregator.rewind import install as install_rewind
from services.kit.follow import Follower
from services.kit.partitioning import partition_for

log = structlog.get_logger(__name__)


class Metrics:
    """Operational metrics of one worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "callpulse_aggregator_events_total",
            "Call events by result.",
            ["result"],
            registry=self.registry,
        )
        self.facts = Counter(
            "callpulse_aggregator_facts_total",
            "Rep facts by result.",
            ["result"],
            registry=self.registry,
        )
        self.snapshots = Counter(
            "callpulse_aggregator_snapshots_total",
            "KPI snapshots published.",
            registry=self.registry,
        )
        self.lag = Histogram(
            "callpulse_aggregator_event_lag_seconds",
            "From an event's arrival in Kafka to its snapshot.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.alerts = Counter(
            "callpulse_aggregator_alerts_total",
            "Alert transitions published.",
            ["kind", "state"],
            registry=self.registry,
        )
        self.reps = Gauge(
            "callpulse_aggregator_reps", "Reps held by this worker.", registry=self.registry
        )


TimerJob = Callable[[], Awaitable[None]]


def _quiet_at_shutdown(job: TimerJob) -> TimerJob:
    """A timer that fires while the worker stops finds the producer gone (faust NotReady); the
    work is not lost: after a restart the refresh timer republishes every rep."""

    @functools.wraps(job)
    async def run() -> None:
        try:
            await job()
        except NotReady:
            log.info("timer_skipped_at_shutdown", timer=job.__name__)

    return run


Item = TypeVar("Item")


async def _yielding(items: list[Item], every: int = 500) -> AsyncIterator[Item]:
    """Iterate, letting the event loop run between slices: a sweep over every rep or call of a
    big floor must not stall the streams (or the latency of every event behind it)."""
    for index, item in enumerate(items):
        if index and index % every == 0:
            await asyncio.sleep(0)
        yield item


def _expiring(call: dict[str, Any], now: datetime, rules: Rules) -> bool:
    """Cheap pre-check on a stored call: open too long, or ended past the retention."""
    if call.get("ended_at") is None:
        return close_if_stale(CallState.from_dict(call), now, rules) is not None
    last = datetime.fromisoformat(call["last_event_at"])
    return (now - last).total_seconds() > rules.call_retention_seconds


def create_app(settings: AggregatorSettings) -> faust.App:
    """Build the Faust app; nothing connects until the worker starts."""
    install_rewind()
    app = faust.App(
        settings.APP_ID,
        broker=f"kafka://{settings.KAFKA_BOOTSTRAP}",
        store="memory://",
        processing_guarantee="at_least_once",
        topic_partitions=settings.PARTITIONS,
        topic_replication_factor=1,
        table_standby_replicas=0,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_host=settings.WEB_HOST,
        web_port=settings.WEB_PORT,
        datadir=settings.DATA_DIR,
        broker_session_timeout=settings.SESSION_TIMEOUT_SECONDS,
        # Batch the many small sends (facts, records, changelogs) into fewer produce requests.
        producer_linger_ms=settings.PRODUCER_LINGER_MS,
        producer_max_batch_size=settings.PRODUCER_BATCH_BYTES,
        broker_max_poll_records=settings.BATCH_MAX_EVENTS,
        key_serializer="raw",
        value_serializer="raw",
    )
    rules = Rules(
        conversation_min_seconds=settings.CONVERSATION_MIN_SECONDS,
        max_call_seconds=settings.MAX_CALL_SECONDS,
        call_retention_seconds=settings.CALL_RETENTION_SECONDS,
    )
    roster = RosterView(default_timezone=settings.TIMEZONE)

    def apply_roster(message: Any, catching_up: bool) -> str:
        if message.value is None:
            return "deleted"
        try:
            roster.apply(RosterRecord.model_validate_json(message.value))
        except ValidationError:
            log.warning("roster_record_invalid", offset=message.offset)
            return "invalid"
        return "applied"

    # Rules, targets and agent ids come from the roster: until it is read to the end, a restarted
    # worker would judge alerts without their rules (and forget, then re-send, firing ones).
    roster_follower = Follower(
        settings.KAFKA_BOOTSTRAP,
        settings.ROSTER_TOPIC,
        apply_roster,
        from_beginning=True,
        client_id="callpulse-aggregator",
    )
    metrics = Metrics()
    events_topic = app.topic(settings.EVENTS_TOPIC, key_type=bytes, value_type=bytes)
    facts_topic = app.topic(settings.FACTS_TOPIC, key_type=bytes, value_type=bytes)
    alerts_topic = app.topic(settings.ALERTS_TOPIC, key_type=bytes, value_type=bytes)
    ticks_topic = app.topic(settings.TICKS_TOPIC, key_type=bytes, value_type=bytes)
    # Values are JSON bytes: the changelog stores what the domain's to_dict() gives.
    # use_partitioner: a key's changelog partition is its key's partition (where its events and
    # facts are routed), not the partition of whichever record a batch happened to end with.
    calls = app.Table("calls", default=None, key_type=bytes, value_type=bytes, use_partitioner=True)
    reps = app.Table("reps", default=None, key_type=bytes, value_type=bytes, use_partitioner=True)
    # rep_id -> arrival time (epoch s) of the newest event not yet in a published snapshot
    dirty: dict[str, float] = {}
    live: dict[str, RepState] = {}  # decoded reps of this worker, keyed like the table
    published: dict[str, int] = {}  # signature of each rep's last snapshot: skip no-op refreshes
    pacing = {"next_flush": 0.0}

    def settled() -> bool:
        """The roster read, assigned, and every table recovered from its changelog."""
        return (
            roster_follower.ready.is_set()
            and app.rebalancing is False
            and app.consumer is not None
            and not app.in_recovery
            and cast(Any, app.tables).recovery.completed.is_set()
        )

    def when_settled(job: TimerJob) -> TimerJob:
        """A timer reads the tables and the roster: not while a rebalance replays the tables (a
        replayed key briefly holds an older version, and a decoded copy of it would outlive the
        replay), nor before the roster is read."""

        @functools.wraps(job)
        async def run() -> None:
            if settled():
                await job()

        return run

    def rep_state(rep_id: str) -> RepState:
        state = live.get(rep_id)
        if state is None:
            raw = reps.get(rep_id.encode())
            state = RepState.from_dict(loads(raw)) if raw else RepState(rep_id=rep_id)
            live[rep_id] = state
        return state

    def save_rep(rep_id: str, state: RepState) -> None:
        put(reps, rep_id.encode(), dumps(state.to_dict()))

    def partition_count(topic: str) -> int:
        return app.consumer.topic_partitions(topic) or settings.PARTITIONS

    async def producer() -> Any:
        # The worker's own aiokafka producer: Faust flushes it before committing offsets.
        return app.producer._ensure_producer()  # type: ignore[attr-defined]

    facts_out, records_out, kpis_out = Outbox(producer), Outbox(producer), Outbox(producer)
    changelog_out = Outbox(producer)

    def put(table: Any, key: bytes, value: bytes | None) -> None:
        """Set (None: delete) a table key; its changelog record goes through the outbox.

        Faust's own path (`table[key] = value`) sends each changelog record through Topic.send
        (a sixth of a draining worker's time). The record is the same (raw key and value, the
        key's partition, as use_partitioner gives), so recovery reads it like Faust's own, and
        the commit's flush of the producer delivers it before the offsets move.
        """
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value
        changelog_out.add(table.changelog_topic.get_topic_name(), key, value)

    async def send_facts(facts: list[tuple[RepFact, float]]) -> None:
        """Send the facts packed per partition and wait until Kafka has them all."""
        for partition, value in pack(facts, partition_count(settings.FACTS_TOPIC)).items():
            facts_out.add(settings.FACTS_TOPIC, None, value, partition)
        await asyncio.gather(*await facts_out.send())

    @app.agent(events_topic)
    async def assemble(stream: faust.StreamT[bytes]) -> None:
        """Stage 1: fold each batch of events into their calls and send the per-rep facts.

        The facts are durable before the calls' new states are saved: a worker that dies in
        between redoes the batch from the old states, making the same versions (stage 2 applies
        each once); one that dies later re-sends the current versions on redelivery.
        """
        events: Any = stream  # take_events is on faust.Stream, not on the StreamT protocol
        async for batch in events.take_events(
            settings.BATCH_MAX_EVENTS, within=settings.BATCH_SECONDS
        ):
            states: dict[str, CallState | None] = {}
            changed: set[str] = set()
            facts: list[tuple[RepFact, float]] = []
            for event_ in batch:
                try:
                    event = event_from_json(event_.value)
                except ValidationError:
                    metrics.events.labels("invalid").inc()
                    log.warning("event_invalid", offset=event_.message.offset)
                    continue
                event = roster.resolve(event)  # a provider's agent id -> our rep id
                call_id = event.call_id
                if call_id not in states:
                    raw = calls.get(call_id.encode())
                    states[call_id] = CallState.from_dict(loads(raw)) if raw else None
                step = apply_event(states[call_id], event, rules)
                facts += [(fact, event_.message.timestamp) for fact in step.facts]
                if step.duplicate:
                    metrics.events.labels("duplicate").inc()
                    continue
                states[call_id] = step.state
                changed.add(call_id)
                metrics.events.labels("applied").inc()
            await send_facts(facts)
            for call_id in changed:
                state = states[call_id]
                assert state is not None  # changed calls have a state
                put(calls, call_id.encode(), dumps(state.fields()))
                records_out.add(
                    settings.CALLS_TOPIC,
                    call_id.encode(),
                    call_record(state).model_dump_json().encode(),
                )
            await changelog_out.send()  # delivered by the commit's flush at the latest
            await records_out.send()

    @app.agent(facts_topic)
    async def accumulate(stream: faust.StreamT[bytes]) -> None:
        """Stage 2: apply each fact once to its rep's buckets; save each touched rep once."""
        async for batch in stream.take(settings.BATCH_MAX_EVENTS, within=settings.BATCH_SECONDS):
            touched: dict[str, RepState] = {}
            ticked: list[str] = []
            now = datetime.now(UTC)
            for value in batch:
                message = loads(value)
                if "tick" in message:  # from evaluate_alerts: rules are judged where state lives
                    ticked.append(message["rep_id"])
                    continue
                for fact, arrived in unpack(message):
                    state = rep_state(fact.rep_id)
                    ctx = roster.context(fact.rep_id, fact.team_id or state.team_id)
                    if not apply_fact(state, fact, ZoneInfo(ctx.timezone), now):
                        metrics.facts.labels("duplicate").inc()
                        continue
                    touched[fact.rep_id] = state
                    # Faust gives the record's Kafka timestamp in epoch seconds
                    dirty.setdefault(fact.rep_id, float(arrived or time.time()))
                    metrics.facts.labels("applied").inc()
            for rep_id, state in touched.items():
                save_rep(rep_id, state)
            await changelog_out.send()
            for rep_id in ticked:
                await judge(rep_id)

    async def judge(rep_id: str) -> None:
        """Evaluate a rep's alert rules where its state lives (the rules' state is in the rep).

        Not before the roster is read: the next tick comes within ALERT_EVALUATION_SECONDS."""
        if not roster_follower.ready.is_set():
            return
        state = rep_state(rep_id)
        now = datetime.now(UTC)
        ctx = roster.context(rep_id, state.team_id)
        if not ctx.alert_rules and not state.alerts:
            return
        snap = snapshot(state, ctx, now, 0.0)
        fired = evaluate(state.alerts, ctx.alert_rules, snap, ctx.shift, ctx.targets, now)
        if not fired:
            return
        # The rules' state lives in the rep: persist it together with the notification.
        save_rep(rep_id, state)
        await changelog_out.send()
        for alert in fired:
            await alerts_topic.send(key=rep_id.encode(), value=alert.model_dump_json().encode())
            metrics.alerts.labels(alert.kind, alert.state).inc()

    def publish(rep_id: str, arrived: float | None) -> None:
        """Queue the rep's snapshot in kpis_out (unless unchanged on a refresh)."""
        state = rep_state(rep_id)
        now = datetime.now(UTC)
        ctx = roster.context(rep_id, state.team_id)
        prune(state, ZoneInfo(ctx.timezone), now)
        lag = 0.0 if arrived is None else now.timestamp() - arrived
        snap = snapshot(state, ctx, now, lag)
        body = signature(snap)
        if arrived is None and published.get(rep_id) == body:
            return
        published[rep_id] = body
        kpis_out.add(settings.KPIS_TOPIC, rep_id.encode(), snap.model_dump_json().encode())
        metrics.snapshots.inc()
        if arrived is not None:
            metrics.lag.observe(lag)

    @app.timer(interval=settings.SNAPSHOT_INTERVAL_SECONDS)
    @_quiet_at_shutdown
    @when_settled
    async def flush_snapshots() -> None:
        """Coalesce: at most one snapshot per changed rep per interval.

        When flushing takes long (a worker catching up on a big floor), the next flush waits
        twice as long as this one took: snapshots get at most a third of the worker's time.
        """
        began = time.monotonic()
        if began < pacing["next_flush"]:
            return
        batch = list(dirty.items())
        dirty.clear()
        async for rep_id, arrived in _yielding(batch):
            publish(rep_id, arrived)
            if len(kpis_out) >= settings.BATCH_MAX_EVENTS:
                await kpis_out.send()
        await kpis_out.send()
        pacing["next_flush"] = time.monotonic() + 2 * (time.monotonic() - began)

    @app.timer(interval=settings.ROLLING_REFRESH_SECONDS)
    @_quiet_at_shutdown
    @when_settled
    async def refresh_rolling() -> None:
        """Rolling windows move without events: republish reps whose numbers changed."""
        async for key in _yielding(list(reps.keys())):
            publish(key.decode(), None)
            if len(kpis_out) >= settings.BATCH_MAX_EVENTS:
                await kpis_out.send()
        await kpis_out.send()
        metrics.reps.set(len(live))

    @app.timer(interval=settings.ALERT_EVALUATION_SECONDS)
    @_quiet_at_shutdown
    @when_settled
    async def evaluate_alerts() -> None:
        """Time moves rules (pace, idle, missed): tick each rep that has rules, in its partition.

        The tick travels through the facts topic, so the rules are judged between the rep's
        batches by the agent that owns the rep, never concurrently with them.
        """
        async for key in _yielding(list(reps.keys())):
            rep_id = key.decode()
            state = rep_state(rep_id)
            if roster.context(rep_id, state.team_id).alert_rules or state.alerts:
                await facts_topic.send(key=key, value=dumps({"tick": 1, "rep_id": rep_id}))

    @app.timer(interval=60.0)
    @_quiet_at_shutdown
    @when_settled
    async def find_stale_calls() -> None:
        """Calls open past max_call_seconds, or ended past the retention, get a tick."""
        now = datetime.now(UTC)
        async for key, raw in _yielding(list(calls.items())):
            if raw is not None and _expiring(loads(raw), now, rules):
                await ticks_topic.send(key=key, value=b"{}")

    @app.agent(ticks_topic)
    async def expire(stream: faust.StreamT[bytes]) -> None:
        """Close a call with no end after max_call_seconds as failed; forget old ended calls.

        Co-partitioned with the calls, so it never races stage 1 for a call's state.
        """
        async for event_ in stream.events():
            key = event_.key
            raw = calls.get(key)
            if raw is None:
                continue
            now = datetime.now(UTC)
            state = CallState.from_dict(loads(raw))
            if forgettable(state, now, rules):
                put(calls, key, None)
                await changelog_out.send()
                continue
            step = close_if_stale(state, now, rules)
            if step is None:
                continue
            await send_facts([(fact, time.time()) for fact in step.facts])
            put(calls, key, dumps(step.state.fields()))
            await changelog_out.send()
            records_out.add(
                settings.CALLS_TOPIC, key, call_record(step.state).model_dump_json().encode()
            )
            await records_out.send()

    @app.task
    async def quiet_clients() -> None:
        """Cap the Kafka clients' loggers at WARNING once the worker has set up logging.

        Their per-send debug records cost ~13 % of the worker's CPU (py-spy) even unprinted.
        """
        for name in ("aiokafka", "faust", "mode"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))

    @app.task
    async def follow_roster() -> None:
        """Every worker reads the whole compacted roster topic (it is small), then follows it."""
        await roster_follower.run()

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        # ready = assigned and every table recovered from its changelog (a restarted worker
        # replays its state first; until then it must not take traffic in a rolling upgrade)
        ready = settled()
        return web.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp takes the charset apart from the content type (it refused the whole header)
        return web.bytes(
            generate_latest(metrics.registry), content_type="text/plain; version=0.0.4"
        )

    @app.on_partitions_revoked.connect
    def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Partitions may move to another worker: drop decoded copies, the table is the truth.
        live.clear()
        published.clear()

    @app.on_partitions_assigned.connect
    def drop_moved(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Forget the keys of partitions that moved to another worker.

        Faust's memory store keeps every key this worker wrote itself, whoever owns its partition
        now: the refresh timer would publish those reps' stale snapshots over their new owner's.
        A partition that comes back is replayed from its changelog.
        """
        assigned: set[Any] = args[0]  # Faust sends the new assignment, a set of TPs
        drop_moved_keys(calls, settings.EVENTS_TOPIC, assigned)
        for key in drop_moved_keys(reps, settings.FACTS_TOPIC, assigned):
            dirty.pop(key.decode(), None)

    def drop_moved_keys(table: Any, topic: str, assigned: set[Any]) -> list[bytes]:
        count = partition_count(topic)
        mine = {tp.partition for tp in assigned if tp.topic == topic}
        moved = [key for key in table.data if partition_for(key, count) not in mine]
        for key in moved:
            del table.data[key]
        if moved:
            log.info("moved_keys_dropped", table=table.name, keys=len(moved))
        return moved

    return app


def run_worker(settings: AggregatorSettings, loglevel: str = "info") -> None:
    """Ensure topics exist, then run one Faust worker until stopped."""
    from services.kit.kafka import ensure_topics

    asyncio.run(
        ensure_topics(
            settings.KAFKA_BOOTSTRAP,
            [
                settings.EVENTS_TOPIC,
                settings.FACTS_TOPIC,
                settings.TICKS_TOPIC,
                settings.KPIS_TOPIC,
                settings.CALLS_TOPIC,
                settings.ALERTS_TOPIC,
                settings.ROSTER_TOPIC,
            ],
            partitions=settings.PARTITIONS,
            compacted=[settings.KPIS_TOPIC, settings.CALLS_TOPIC, settings.ROSTER_TOPIC],
        )
    )
    # uvloop: the streams' per-message machinery is event-loop bound (~30 % more events/s)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel)
    worker.execute_from_commandline()
