"""The ingest service's FastAPI app: `uvicorn --factory services.ingest.app:app_from_env`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.ingest.config import IngestSettings
from services.ingest.openapi import problem_responses
from services.ingest.publisher import EventPublisher, KafkaPublisher
from services.ingest.routes import install
from services.kit import collector
from services.kit import logging as kit_logging
from services.kit.kafka import connection
from services.kit.problems import Problem, install_problem_handlers, problem_response

log = structlog.get_logger(__name__)


class IngestState(TypedDict):
    """What the lifespan yields to requests (`request.state.publisher`)."""

    publisher: EventPublisher


def create_app(settings: IngestSettings, publisher: EventPublisher | None = None) -> FastAPI:
    """Build the ingest app; without a publisher, the lifespan runs a KafkaPublisher."""
    owned: KafkaPublisher | None = None
    if publisher is None:
        if not settings.KAFKA_BOOTSTRAP:
            raise ValueError(
                "CALLPULSE_KAFKA_BOOTSTRAP is not set: the ingest service publishes to Kafka "
                "(the embedded mode runs ingest inside `callpulse run` instead)"
            )
        owned = KafkaPublisher(
            connection(settings),
            settings.EVENTS_TOPIC,
            timeout_seconds=settings.PUBLISH_TIMEOUT_SECONDS,
        )
        publisher = owned
    active: EventPublisher = publisher

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[IngestState]:
        if owned is not None:
            await owned.start()
        collector.freeze()  # what start-up built stays out of every full collection
        try:
            yield {"publisher": active}
        finally:
            if owned is not None:
                await owned.stop()

    app = FastAPIOffline(  # Swagger UI and ReDoc from a package: /docs works offline
        title="callpulse ingest",
        version="1",
        summary="Call events in; durable in Kafka out.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_exception_handler(Exception, _crash)
    registry = CollectorRegistry()
    install(app, settings, active, registry)
    _add_probes(app, active, registry)
    return app


def app_from_env() -> FastAPI:
    """Zero-argument factory for uvicorn: settings from `CALLPULSE_*`, logging configured."""
    kit_logging.configure()
    return create_app(IngestSettings())


def _add_probes(app: FastAPI, publisher: EventPublisher, registry: CollectorRegistry) -> None:
    @app.get(
        "/healthz",
        tags=["ops"],
        summary="Liveness",
        description="200 while the process serves requests; it checks no dependency.",
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness",
        description="200 once the publisher can make events durable, else 503.",
        responses={
            503: {
                "description": "The publisher is not connected yet.",
                "content": problem_responses(503)[503]["content"],
            }
        },
    )
    async def readyz() -> dict[str, str]:
        if not publisher.ready:
            raise Problem(503, "Not ready", "The event publisher is not connected yet.")
        return {"status": "ready"}

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics",
        description="The ingest metrics in the Prometheus text format.",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    # Last resort: a bug must still answer in the documented shape, never with a bare 500.
    log.error("unhandled_error", path=request.url.path, error=type(exc).__name__)
    return problem_response(
        Problem(500, "Internal Server Error", "An unexpected error occurred."), request.url.path
    )
