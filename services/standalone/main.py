"""`callpulse run`: ingest routes, the KPI domain and the API in one process (embedded mode).

No Kafka, no PostgreSQL: an in-process bus between the durable SQLite event log and the read
model, and SQLite for history, roster and keys. Same routes and contracts as the distributed
services, on one port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

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

from schemas.calls import CallRecord
from schemas.roster import RosterRecord
from services.aggregator.config import AggregatorSettings
from services.aggregator.core import Aggregator, MemoryStore, cadence_of, rules_of
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.api import app as api_app
from services.api.coaching import wiring as coaching_wiring
from services.api.competitions import wiring as competitions_wiring
from services.api.config import ApiSettings
from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker, migrate
from services.api.keys import ensure_bootstrap_key
from services.api.readmodel import ReadModel
from services.ingest.config import IngestSettings
from services.ingest.routes import install as install_ingest
from services.kit import collector
from services.kit import logging as kit_logging
from services.standalone import datadir
from services.standalone.banner import banner, ensure_webhook_secret
from services.standalone.config import StandaloneSettings
from services.standalone.engine import EmbeddedEngine
from services.standalone.eventlog import SqliteEventLog

log = structlog.get_logger(__name__)


class _RosterFeed:
    """RosterPublisher for the embedded mode: roster changes go straight into the domain."""

    def __init__(self, engine: EmbeddedEngine) -> None:
        self.engine = engine

    async def publish(self, record: RosterRecord) -> None:
        await self.engine.publish_roster(record)


def create_app(
    data_dir: Path, *, demo_url: str | None = None, demo_minutes: float | None = None
) -> FastAPI:
    """The embedded app; settings from `CALLPULSE_*`, SQLite files under `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # the process's environment is not changed: an app built in-process (tests) must not point
    # every later `callpulse run` it starts at this folder's database
    api_settings = ApiSettings(KAFKA_BOOTSTRAP=None, DATABASE_URL=datadir.database_url(data_dir))
    ingest_settings = IngestSettings(KAFKA_BOOTSTRAP=None)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    readmodel = ReadModel(default_timezone=api_settings.TIMEZONE)
    db = create_engine(api_settings.DATABASE_URL)
    sessions = create_sessionmaker(db)
    aggregator_settings = AggregatorSettings()
    cadence = cadence_of(aggregator_settings)
    core = Aggregator.build(
        MemoryStore(),
        MemoryStore(),
        rules=rules_of(aggregator_settings),
        roster=RosterView(default_timezone=aggregator_settings.TIMEZONE),
        metrics=Metrics(registry),
        cadence=cadence,
    )

    async def store_records(records: list[CallRecord]) -> None:
        async with sessions.begin() as session:
            await repository.upsert_calls(
                session,
                records,
                conversation_min_seconds=aggregator_settings.CONVERSATION_MIN_SECONDS,
            )
        await competitions_wiring.on_stored(app, records)
        await coaching_wiring.on_stored(app, records)  # CSAT follow-ups

    standalone = StandaloneSettings()
    engine = EmbeddedEngine(
        SqliteEventLog(data_dir / "events.db"),
        core,
        cadence,
        on_snapshot=readmodel.apply,
        on_records=store_records,
        checkpoint_seconds=standalone.CHECKPOINT_SECONDS,
        log_retention=timedelta(days=standalone.LOG_RETENTION_DAYS),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        await migrate(db)
        created = await ensure_bootstrap_key(sessions, api_settings.BOOTSTRAP_ADMIN_KEY)
        if created is not None:
            api_app.announce_key(created)
        async with sessions() as session:
            for record in await repository.roster_records(session):
                core.roster.apply(record)
        await engine.log.open()
        # alert history, SSE resume and delivery run as in the API service
        async with api_app.alert_tasks(app), competitions_wiring.competition_tasks(app):
            await engine.start()
            demo: asyncio.Task[None] | None = None
            stop = asyncio.Event()
            if demo_url is not None:
                truth = data_dir / "demo-truth.json"
                demo = asyncio.create_task(
                    _demo(demo_url, ingest_settings, api_settings, stop, demo_minutes, truth)
                )
            try:
                yield {"readmodel": readmodel, "sessions": sessions}
            finally:
                stop.set()
                if demo is not None:
                    demo.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await demo
                await engine.stop()
        await engine.log.close()
        await db.dispose()

    app = FastAPIOffline(  # Swagger UI and ReDoc from a package: /docs works offline
        title="callpulse (embedded)",
        version="1",
        description="Ingest, KPI aggregation and the API in one process.\n\n" + api_app.DESCRIPTION,
        lifespan=lifespan,
    )
    install_ingest(app, ingest_settings, engine, registry)
    context = api_app.install(app, api_settings, readmodel, sessions, _RosterFeed(engine), registry)
    engine.on_alert = context.alerts.submit
    engine.record_alerts = context.alerts.record  # stored before a checkpoint covers them

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness: checkpoint loaded, log tail replayed")
    async def readyz(response: Response) -> dict[str, bool]:
        response.status_code = 200 if engine.ready else 503
        return {"ready": engine.ready}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _demo(
    url: str,
    settings: IngestSettings,
    api: ApiSettings,
    stop: asyncio.Event,
    minutes: float | None,
    truth: Path,
) -> None:
    """The demo floor; with `minutes`, it stops then and writes its ground truth for verify."""
    from services.simulator.demo import run_demo

    secret = settings.WEBHOOK_SECRET.get_secret_value() if settings.WEBHOOK_SECRET else None
    key = api.BOOTSTRAP_ADMIN_KEY.get_secret_value() if api.BOOTSTRAP_ADMIN_KEY else None
    await asyncio.sleep(0.5)  # let the server accept connections first
    if minutes is not None:
        asyncio.get_running_loop().call_later(minutes * 60, stop.set)
    await run_demo(
        url,
        secret,
        reps=50,
        stop=stop,
        timezone=api.TIMEZONE,
        api_key=key,
        database_url=api.DATABASE_URL,
        truth_out=truth if minutes is not None else None,
    )
    if minutes is not None:
        log.info("demo_stopped", truth=str(truth))
        sys.stderr.write(
            f"\ncallpulse: the demo floor stopped; its ground truth is in {truth}.\n"
            f"Check the live numbers against it:\n\n  .venv/bin/callpulse verify --url {url} "
            f"--key <admin key> --truth {truth}\n\n"
        )


def serve(
    host: str, port: int, data_dir: str, demo: bool, demo_minutes: float | None = None
) -> None:
    """Run the embedded app with uvicorn and print how to use it.

    The data folder and the port are taken before anything is printed: a second callpulse on
    the same folder, or a busy port, gets one line and exit status 1, and no banner or key.
    """
    import uvicorn

    kit_logging.configure()
    base = f"http://{host}:{port}"
    root = Path(data_dir)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(datadir.hold(root, f"serving {base}"))
        except datadir.DataDirBusy as exc:
            _fail(str(exc))
        sock = stack.enter_context(_listen(host, port))
        if os.environ.get("CALLPULSE_WEBHOOK_SECRET"):
            secret = os.environ["CALLPULSE_WEBHOOK_SECRET"]
            source = "from CALLPULSE_WEBHOOK_SECRET"
        else:
            secret = ensure_webhook_secret(root)
            source = f"in {root / 'webhook_secret'} (set CALLPULSE_WEBHOOK_SECRET to choose one)"
            os.environ["CALLPULSE_WEBHOOK_SECRET"] = secret
        app = create_app(root, demo_url=base if demo else None, demo_minutes=demo_minutes)
        sys.stderr.write(banner(base, secret, source))
        collector.freeze()  # what start-up built stays out of every full collection
        config = uvicorn.Config(app, host=host, port=port, log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])


def _fail(line: str) -> NoReturn:
    sys.stderr.write(line + "\n")
    raise SystemExit(1)


@contextlib.contextmanager
def _listen(host: str, port: int) -> Iterator[socket.socket]:
    """A listening socket on (host, port), or one clear line and exit 1 when it is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        _fail(f"callpulse: cannot listen on {host!r}: {exc.strerror}; check --host")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                _fail(
                    f"callpulse: port {port} on {host} is already in use (another callpulse "
                    f"or another server); choose another with --port {port + 1} "
                    f"(make run PORT={port + 1})"
                )
            _fail(f"callpulse: cannot listen on {host}:{port}: {exc.strerror}")
        sock.listen(2048)
        yield sock
    finally:
        sock.close()
