"""The API service: `install()` adds the API to any FastAPI app; `create_app()` is the
distributed service (database, Kafka consumers, health and metrics) around it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypedDict

import structlog
from fastapi import FastAPI, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.alerts.service import AlertService
from services.api.coaching import wiring as coaching_wiring
from services.api.competitions import wiring as competitions_wiring
from services.api.config import ApiSettings
from services.api.consumers import (
    AlertsConsumer,
    CallsConsumer,
    Store,
    calls_store,
    kpis_handler,
)
from services.api.context import ApiContext
from services.api.db.engine import create_engine, create_sessionmaker, migrate
from services.api.keys import ensure_bootstrap_key
from services.api.metrics import (
    AlertMetrics,
    ApiMetrics,
    HttpMetricsMiddleware,
    ReadModelCollector,
)
from services.api.publisher import KafkaRosterPublisher, NullRosterPublisher, RosterPublisher
from services.api.readmodel import ReadModel
from services.api.routes import (
    alerts,
    coaching,
    competitions,
    kpis,
    reports,
    roster,
    stream,
    wallboard,
)
from services.kit import collector
from services.kit import logging as kit_logging
from services.kit.follow import Follower
from services.kit.kafka import Target, connection, ensure_topics
from services.kit.problems import install_problem_handlers

log = structlog.get_logger(__name__)

DESCRIPTION = """Live KPIs of a telesales floor, per rep and team, served from memory.

Authenticate with `Authorization: Bearer <key>`; roles `viewer` < `supervisor` < `admin`.
Errors are `application/problem+json` (RFC 9457).

`lag_seconds` is the time from the arrival in Kafka of the newest event the numbers include to
their being served here (aggregator lag plus delivery to this replica); it does not grow while a
rep is idle. `age_seconds` is the time since the snapshot was computed (`as_of`).
"""


def install(
    app: FastAPI,
    settings: ApiSettings,
    readmodel: ReadModel,
    sessionmaker: async_sessionmaker[AsyncSession],
    roster_publisher: RosterPublisher,
    registry: CollectorRegistry,
) -> ApiContext:
    """Add the API routes and business metrics to an existing app; returns its context.

    The caller feeds `readmodel` (ReadModel.apply), the calls history and the alert
    transitions (`context.alerts.record`, or `.submit` from synchronous code), has migrated the
    database (`migrate`) and ensured the bootstrap key (`ensure_bootstrap_key`), and runs
    `alert_tasks(app)` in its lifespan (alert delivery and the SSE alert feed).
    """
    ctx = ApiContext.build(
        settings, readmodel, sessionmaker, roster_publisher, alert_metrics=AlertMetrics(registry)
    )
    app.state.callpulse_api = ctx
    coaching_wiring.install(app, ctx)
    install_problem_handlers(app)
    for module in (kpis, roster, alerts, stream, reports, coaching, competitions, wallboard):
        app.include_router(module.router)
    competitions_wiring.install(app, ctx)
    registry.register(ReadModelCollector(readmodel, settings.REP_METRICS_CAP))
    return ctx


@asynccontextmanager
async def alert_tasks(app: FastAPI) -> AsyncIterator[AlertService]:
    """The background parts of alerting for the lifespan of an app `install()`ed into:
    `async with alert_tasks(app): ...` runs the delivery dispatcher, the SSE alert feed, the
    writer behind `AlertService.submit` and the coaching digests' scheduler."""
    ctx: ApiContext = app.state.callpulse_api
    async with ctx.alerts.running() as service, coaching_wiring.tasks(app):
        yield service


class ApiState(TypedDict):
    """What the lifespan yields (available as `request.state`)."""

    settings: ApiSettings
    readmodel: ReadModel
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


class _Runtime:
    """The background parts of the distributed service and its readiness."""

    def __init__(self, settings: ApiSettings, readmodel: ReadModel, metrics: ApiMetrics) -> None:
        self.settings, self.readmodel, self.metrics = settings, readmodel, metrics
        self.database_ready = False
        self.followers: list[Follower] = []
        self.calls: CallsConsumer | None = None
        self.alerts: AlertsConsumer | None = None
        self._topics: asyncio.Task[None] | None = None
        self.after_calls: Store | None = None

    def ready(self) -> dict[str, bool]:
        """Each readiness check by name."""
        checks = {"database": self.database_ready}
        for follower in self.followers:
            if follower.from_beginning:
                checks[f"caught_up:{follower.topic}"] = follower.ready.is_set()
        return checks

    def start_kafka(
        self,
        bootstrap: Target,
        sessions: async_sessionmaker[AsyncSession],
        alert_service: AlertService,
    ) -> None:
        """Create missing topics and start the consumers, all in the background."""
        s = self.settings
        self._topics = asyncio.create_task(self._ensure_topics(bootstrap))
        self.followers = [
            Follower(
                bootstrap,
                s.KPIS_TOPIC,
                kpis_handler(self.readmodel),
                from_beginning=True,
                metrics=self.metrics,
                client_id="callpulse-api",
            ),
        ]
        self.calls = CallsConsumer(
            bootstrap,
            s.CALLS_TOPIC,
            f"{s.CONSUMER_GROUP_PREFIX}-api-calls",
            calls_store(sessions, s.CONVERSATION_MIN_SECONDS, after=self.after_calls),
            metrics=self.metrics,
        )
        # A consumer group committing after the database write, not a follower: transitions
        # published while no replica ran are still stored and notified.
        self.alerts = AlertsConsumer(
            bootstrap,
            s.ALERTS_TOPIC,
            f"{s.CONSUMER_GROUP_PREFIX}-api-alerts",
            alert_service.record,
            metrics=self.metrics,
            max_records=200,
        )
        for follower in self.followers:
            follower.start()
        self.calls.start()
        self.alerts.start()

    async def stop(self) -> None:
        """Stop every background task."""
        if self._topics is not None:
            self._topics.cancel()
        for follower in self.followers:
            await follower.stop()
        if self.calls is not None:
            await self.calls.stop()
        if self.alerts is not None:
            await self.alerts.stop()

    async def _ensure_topics(self, bootstrap: Target) -> None:
        s = self.settings
        names = (s.KPIS_TOPIC, s.CALLS_TOPIC, s.ROSTER_TOPIC, s.ALERTS_TOPIC)
        compacted = (s.KPIS_TOPIC, s.CALLS_TOPIC, s.ROSTER_TOPIC)
        delay = 0.5
        while True:
            try:
                await ensure_topics(bootstrap, names, partitions=s.PARTITIONS, compacted=compacted)
                return
            except Exception as exc:  # Kafka not up yet: the consumers wait for the topics
                log.warning("ensure_topics_failed", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def announce_key(key: str) -> None:
    """Show a newly created admin key once, on stderr (not in the structured logs)."""
    sys.stderr.write(
        "\ncallpulse: created the first admin API key. It is shown only this once:\n\n"
        f"    {key}\n\nUse it as `Authorization: Bearer <key>`; create others with "
        "`callpulse keys create`.\n\n"
    )


def create_app(settings: ApiSettings) -> FastAPI:
    """The API service; nothing connects until the lifespan starts."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    metrics = ApiMetrics(registry)
    readmodel = ReadModel(default_timezone=settings.TIMEZONE)
    engine = create_engine(settings.DATABASE_URL)
    sessions = create_sessionmaker(engine)
    publisher: KafkaRosterPublisher | NullRosterPublisher = (
        KafkaRosterPublisher(connection(settings), settings.ROSTER_TOPIC)
        if settings.KAFKA_BOOTSTRAP
        else NullRosterPublisher()
    )
    runtime = _Runtime(settings, readmodel, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[ApiState]:
        await migrate(engine)
        created = await ensure_bootstrap_key(sessions, settings.BOOTSTRAP_ADMIN_KEY)
        if created is not None:
            announce_key(created)
        runtime.database_ready = True
        async with AsyncExitStack() as stack:
            # Closed in reverse: consumers, publisher, alert tasks, then the engine.
            stack.push_async_callback(engine.dispose)
            alert_service = await stack.enter_async_context(alert_tasks(app))
            await stack.enter_async_context(competitions_wiring.competition_tasks(app))
            if settings.KAFKA_BOOTSTRAP and isinstance(publisher, KafkaRosterPublisher):
                publisher.start()
                stack.push_async_callback(publisher.stop)
                runtime.start_kafka(connection(settings), sessions, alert_service)
            stack.push_async_callback(runtime.stop)
            collector.freeze()  # what start-up built stays out of every full collection
            log.info("api_started", kafka=bool(settings.KAFKA_BOOTSTRAP))
            yield ApiState(settings=settings, readmodel=readmodel, engine=engine, sessions=sessions)

    app = FastAPIOffline(  # Swagger UI and ReDoc from a package: /docs works offline
        title="callpulse API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    install(app, settings, readmodel, sessions, publisher, registry)
    runtime.after_calls = coaching_wiring.after_stored(
        app, competitions_wiring.service_of(app).on_stored
    )
    _health_routes(app, runtime, registry)
    return app


def _health_routes(app: FastAPI, runtime: _Runtime, registry: CollectorRegistry) -> None:
    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: schema migrated and the KPI topic read to its end at start",
        responses={503: {"description": "Not ready yet."}},
    )
    async def readyz(response: Response) -> dict[str, Any]:
        checks = runtime.ready()
        ready = all(checks.values())
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory services.api.app:app_from_env`."""
    kit_logging.configure()
    return create_app(ApiSettings())
