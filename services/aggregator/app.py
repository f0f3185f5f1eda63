"""The Faust driver: agents, timers and pages that call one worker's steps (`worker.py`).

Stage 1 reads `callpulse.call-events` (key call_id) into the `calls` table and sends facts
packed per partition to `callpulse.rep-facts` (key rep_id); stage 2 keeps the `reps` table and
publishes snapshots and alerts. Every decision is the aggregator core's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import structlog
import uvloop
from faust.exceptions import NotReady
from prometheus_client import generate_latest

from services.aggregator import faust_compat, testhooks
from services.aggregator.config import AggregatorSettings
from services.aggregator.fence import heartbeat_interval
from services.aggregator.worker import Worker
from services.kit import collector
from services.kit.kafka import faust_kwargs, internal_topics, refuse_start, topic_plan

log = structlog.get_logger(__name__)


Job = Callable[[], Awaitable[None]]


def create_app(settings: AggregatorSettings) -> faust.App:
    """Build the Faust app; nothing connects until the worker starts."""
    faust_compat.install()
    faust_compat.register_stores()
    # the soak's control runs (Faust as shipped) have no commit hook to checkpoint the store
    rocksdb = settings.AGGREGATOR_STORE == "rocksdb" and not testhooks.fixes_disabled()
    app = faust.App(
        settings.APP_ID,
        **faust_kwargs(settings),
        store=faust_compat.ROCKSDB_URL if rocksdb else "memory://",
        processing_guarantee="at_least_once",
        topic_partitions=settings.PARTITIONS,
        # a memory store's standby would hold other workers' keys in the dict it serves
        table_standby_replicas=settings.STANDBY_REPLICAS if rocksdb else 0,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_host=settings.WEB_HOST,
        web_bind=settings.WEB_HOST,  # Faust would listen on 0.0.0.0 whatever web_host says
        web_port=settings.WEB_PORT,
        datadir=settings.DATA_DIR,
        broker_session_timeout=settings.SESSION_TIMEOUT_SECONDS,
        broker_heartbeat_interval=heartbeat_interval(settings.SESSION_TIMEOUT_SECONDS),
        producer_linger_ms=settings.PRODUCER_LINGER_MS,
        producer_max_batch_size=settings.PRODUCER_BATCH_BYTES,
        broker_max_poll_records=settings.BATCH_MAX_EVENTS,
        key_serializer="raw",
        value_serializer="raw",
    )
    worker = Worker(app, settings)
    size = settings.BATCH_MAX_EVENTS

    # Any exception in a batch stops the worker hard: Faust would ack the batch and commit past
    # it (failstop.py). Nothing is committed before what was sent is confirmed in Kafka.
    @app.agent(app.topic(settings.EVENTS_TOPIC, key_type=bytes, value_type=bytes))
    async def assemble(stream: Any) -> None:
        async for batch in faust_compat.take_batches(stream, size, linger=settings.BATCH_SECONDS):
            try:
                await worker.assemble(batch)
            except Exception as error:  # fail-stop on anything
                worker.fail_stop("stage 1 could not process a batch", error)

    @app.agent(app.topic(settings.FACTS_TOPIC, key_type=bytes, value_type=bytes))
    async def accumulate(stream: Any) -> None:
        async for batch in faust_compat.take_batches(stream, size, settings.FACTS_BATCH_SECONDS):
            try:
                await worker.accumulate([event.value for event in batch])
            except Exception as error:  # fail-stop on anything
                worker.fail_stop("stage 2 could not process a batch", error)

    faust_compat.before_commit(app, worker.confirm)
    faust_compat.fetch_max_wait(app, settings.FETCH_MAX_WAIT_MS)
    if not testhooks.fixes_disabled():  # the soak's control runs: Faust as shipped
        faust_compat.on_recovery_failure(
            lambda message: worker.fail_stop(f"table recovery failed: {message}")
        )
        faust_compat.keep_changelog_reads_on_resume(app)

    for seconds, job in (
        (settings.SNAPSHOT_INTERVAL_SECONDS, worker.flush),
        (settings.ROLLING_REFRESH_SECONDS, worker.refresh),
        (settings.ALERT_EVALUATION_SECONDS, worker.judge),
        (settings.STALE_SWEEP_SECONDS, worker.sweep),
    ):
        app.timer(interval=seconds)(_when_settled(worker, job))

    @app.task
    async def follow_roster() -> None:
        # Kafka clients' per-send debug records cost ~13 % of the worker's CPU even unprinted.
        for name in ("aiokafka", "faust", "mode"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
        await worker.roster.run()

    _ops_pages(app, worker)
    app.on_partitions_revoked.connect(worker.revoked)
    app.on_partitions_assigned.connect(worker.assigned)
    return app


def _when_settled(worker: Worker, job: Job) -> Job:
    """A timer's job, run only when the worker is settled (not while a rebalance replays the
    tables, nor before the roster is read); it skips quietly when the worker stops under it."""

    @functools.wraps(job)
    async def run() -> None:
        if worker.settled():
            try:
                await job()
            except NotReady:  # the producer is gone: a restart republishes
                log.info("timer_skipped_at_shutdown", timer=job.__name__)

    return run


def _ops_pages(app: faust.App, worker: Worker) -> None:
    """/healthz, /readyz and /metrics on the worker's Faust web server."""

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready = worker.settled()  # a restarted worker replays its state before taking traffic
        return web.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp takes the charset apart from the content type (it refused the whole header)
        worker.observe_commits()
        registry = worker.metrics.registry
        return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")


def run_worker(settings: AggregatorSettings, loglevel: str = "info") -> None:
    """Check the topics (exit with one line if one is missing or wrong; the worker's own
    changelogs are created if missing), then run one Faust worker until stopped."""
    try:
        faust_compat.check()  # first: it needs no broker
    except faust_compat.IncompatibleFaust as error:
        raise SystemExit(f"callpulse aggregator: {error}") from None
    # uvloop: the streams' per-message machinery is event-loop bound (~30 % more events/s).
    # Before the app is built: building it creates the loop its worker then runs on (set after,
    # the worker ran on asyncio's own loop until 2026-12-03; tests/unit/aggregator/test_app.py)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    own = internal_topics(settings, settings.APP_ID)
    refuse_start("aggregator", settings, topic_plan(settings, "aggregator"), own=own)
    app = create_app(settings)
    collector.freeze(collector.WORKER_THRESHOLDS)  # start-up's objects out of every collection
    faust.Worker(app, loglevel=loglevel).execute_from_commandline()
