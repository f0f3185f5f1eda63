"""The Faust app: stage 1 (calls table, key call_id) and stage 2 (reps table, key rep_id).

Agents only decode, read the table, call the pure domain, write the table and send. State lives
in plain tables backed by changelogs; windows are our own buckets inside the values.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import faust
import structlog
from aiokafka import AIOKafkaConsumer
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


def create_app(settings: AggregatorSettings) -> faust.App:
    """Build the Faust app; nothing connects until the worker starts."""
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
        key_serializer="raw",
        value_serializer="raw",
    )
    rules = Rules(
        conversation_min_seconds=settings.CONVERSATION_MIN_SECONDS,
        max_call_seconds=settings.MAX_CALL_SECONDS,
        call_retention_seconds=settings.CALL_RETENTION_SECONDS,
    )
    roster = RosterView(default_timezone=settings.TIMEZONE)
    metrics = Metrics()
    events_topic = app.topic(settings.EVENTS_TOPIC, key_type=bytes, value_type=bytes)
    facts_topic = app.topic(settings.FACTS_TOPIC, key_type=bytes, value_type=bytes)
    kpis_topic = app.topic(settings.KPIS_TOPIC, key_type=bytes, value_type=bytes)
    calls_topic = app.topic(settings.CALLS_TOPIC, key_type=bytes, value_type=bytes)
    alerts_topic = app.topic(settings.ALERTS_TOPIC, key_type=bytes, value_type=bytes)
    ticks_topic = app.topic(settings.TICKS_TOPIC, key_type=bytes, value_type=bytes)
    # Values are JSON bytes: the changelog stores exactly what the domain's to_dict() gives.
    calls = app.Table("calls", default=None, key_type=bytes, value_type=bytes)
    reps = app.Table("reps", default=None, key_type=bytes, value_type=bytes)
    # rep_id -> arrival time (epoch s) of the newest event not yet in a published snapshot
    dirty: dict[str, float] = {}
    live: dict[str, RepState] = {}  # decoded reps of this worker, keyed like the table
    published: dict[str, Any] = {}  # last published windows per rep, to skip no-op republishes

    def rep_state(rep_id: str) -> RepState:
        state = live.get(rep_id)
        if state is None:
            raw = reps.get(rep_id.encode())
            state = RepState.from_dict(json.loads(raw)) if raw else RepState(rep_id=rep_id)
            live[rep_id] = state
        return state

    @app.agent(events_topic)
    async def assemble(stream: faust.StreamT[bytes]) -> None:
        """Stage 1: fold each event into its call and send the per-rep facts."""
        async for event_ in stream.events():
            try:
                event = event_from_json(event_.value)
            except ValidationError:
                metrics.events.labels("invalid").inc()
                log.warning("event_invalid", offset=event_.message.offset)
                continue
            event = roster.resolve(event)  # a provider's agent id -> our rep id
            key = event.call_id.encode()
            raw = calls.get(key)
            step = apply_event(CallState.from_dict(json.loads(raw)) if raw else None, event, rules)
            arrived = event_.message.timestamp
            for fact in step.facts:
                await facts_topic.send(
                    key=fact.rep_id.encode(),
                    value=json.dumps({**fact.to_dict(), "arrived": arrived}).encode(),
                )
            if step.duplicate:
                metrics.events.labels("duplicate").inc()
                continue
            calls[key] = json.dumps(step.state.to_dict()).encode()
            if step.changed:
                record = call_record(step.state)
                await calls_topic.send(key=key, value=record.model_dump_json().encode())
            metrics.events.labels("applied").inc()

    @app.agent(facts_topic)
    async def accumulate(stream: faust.StreamT[bytes]) -> None:
        """Stage 2: apply each fact once to its rep's buckets."""
        async for value in stream:
            raw = json.loads(value)
            if "tick" in raw:  # from evaluate_alerts: rules are judged where the state lives
                await judge(raw["rep_id"])
                continue
            fact = RepFact.from_dict(raw)
            state = rep_state(fact.rep_id)
            ctx = roster.context(fact.rep_id, fact.team_id or state.team_id)
            if not apply_fact(state, fact, ZoneInfo(ctx.timezone), datetime.now(UTC)):
                metrics.facts.labels("duplicate").inc()
                continue
            reps[fact.rep_id.encode()] = json.dumps(state.to_dict()).encode()
            # Faust gives the record's Kafka timestamp in epoch seconds
            dirty.setdefault(fact.rep_id, float(raw.get("arrived") or time.time()))
            metrics.facts.labels("applied").inc()

    async def judge(rep_id: str) -> None:
        """Evaluate a rep's alert rules; only inside stream iteration, since it writes the table."""
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
        reps[rep_id.encode()] = json.dumps(state.to_dict()).encode()
        for alert in fired:
            await alerts_topic.send(key=rep_id.encode(), value=alert.model_dump_json().encode())
            metrics.alerts.labels(alert.kind, alert.state).inc()

    async def publish(rep_id: str, arrived: float | None) -> None:
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
        await kpis_topic.send(key=rep_id.encode(), value=snap.model_dump_json().encode())
        metrics.snapshots.inc()
        if arrived is not None:
            metrics.lag.observe(lag)

    @app.timer(interval=settings.SNAPSHOT_INTERVAL_SECONDS)
    @_quiet_at_shutdown
    async def flush_snapshots() -> None:
        """Coalesce: at most one snapshot per changed rep per interval."""
        batch = list(dirty.items())
        dirty.clear()
        for rep_id, arrived in batch:
            await publish(rep_id, arrived)

    @app.timer(interval=settings.ROLLING_REFRESH_SECONDS)
    @_quiet_at_shutdown
    async def refresh_rolling() -> None:
        """Rolling windows move without events: republish reps whose numbers changed."""
        for key in list(reps.keys()):
            await publish(key.decode(), None)
        metrics.reps.set(len(live))

    @app.timer(interval=settings.ALERT_EVALUATION_SECONDS)
    @_quiet_at_shutdown
    async def evaluate_alerts() -> None:
        """Time moves rules (pace, idle, missed): tick each rep that has rules, in its partition.

        Faust tables may only change inside stream iteration, so the tick travels through the
        facts topic to the agent that owns the rep.
        """
        for key in list(reps.keys()):
            rep_id = key.decode()
            state = rep_state(rep_id)
            if roster.context(rep_id, state.team_id).alert_rules or state.alerts:
                await facts_topic.send(
                    key=key, value=json.dumps({"tick": 1, "rep_id": rep_id}).encode()
                )

    @app.timer(interval=60.0)
    @_quiet_at_shutdown
    async def find_stale_calls() -> None:
        """Calls open past max_call_seconds, or ended past the retention, get a tick."""
        now = datetime.now(UTC)
        for key, raw in list(calls.items()):
            if raw is None:
                continue
            state = CallState.from_dict(json.loads(raw))
            if forgettable(state, now, rules) or close_if_stale(state, now, rules) is not None:
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
            state = CallState.from_dict(json.loads(raw))
            if forgettable(state, now, rules):
                del calls[key]
                continue
            step = close_if_stale(state, now, rules)
            if step is None:
                continue
            calls[key] = json.dumps(step.state.to_dict()).encode()
            for fact in step.facts:
                await facts_topic.send(
                    key=fact.rep_id.encode(), value=json.dumps(fact.to_dict()).encode()
                )
            await calls_topic.send(
                key=key, value=call_record(step.state).model_dump_json().encode()
            )

    @app.task
    async def quiet_clients() -> None:
        """Cap the Kafka clients' loggers at WARNING once the worker has set up logging.

        Their per-send debug records cost ~13 % of the worker's CPU (py-spy) even unprinted.
        """
        for name in ("aiokafka", "faust", "mode"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))

    @app.task
    async def follow_roster() -> None:
        """Every worker reads the whole compacted roster topic (it is small)."""
        consumer = AIOKafkaConsumer(
            settings.ROSTER_TOPIC,
            bootstrap_servers=settings.KAFKA_BOOTSTRAP,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            async for message in consumer:
                if message.value is None:
                    continue
                try:
                    roster.apply(RosterRecord.model_validate_json(message.value))
                except ValidationError:
                    log.warning("roster_record_invalid", offset=message.offset)
        finally:
            await consumer.stop()

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        # ready = assigned and every table recovered from its changelog (a restarted worker
        # replays its state first; until then it must not take traffic in a rolling upgrade)
        ready = (
            app.rebalancing is False
            and app.consumer is not None
            and not app.in_recovery
            and cast(Any, app.tables).recovery.completed.is_set()
        )
        return web.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(
            generate_latest(metrics.registry),
            content_type="text/plain; version=0.0.4",  # aiohttp refuses a charset in here
        )

    @app.on_partitions_revoked.connect
    def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Partitions may move to another worker: drop decoded copies, the table is the truth.
        live.clear()
        published.clear()

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
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel)
    worker.execute_from_commandline()
