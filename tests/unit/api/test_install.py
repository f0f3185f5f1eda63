"""`install()`: the API inside another app (the embedded runner's way), with its own adapters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import SecretStr

from schemas.roster import RosterRecord
from services.api.app import alert_tasks, install
from services.api.config import ApiSettings
from services.api.db.engine import create_engine, create_sessionmaker, migrate
from services.api.keys import ensure_bootstrap_key
from services.api.readmodel import AlertEvent, ReadModel
from tests.unit.api.alerts import make_alert
from tests.unit.api.snapshots import make_snapshot


class RecordingPublisher:
    """An in-process RosterPublisher."""

    def __init__(self) -> None:
        self.records: list[RosterRecord] = []

    async def publish(self, record: RosterRecord) -> None:
        self.records.append(record)


async def test_install_serves_the_callers_read_model_and_publisher(tmp_path: Path) -> None:
    settings = ApiSettings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/embedded.db")
    engine = create_engine(settings.DATABASE_URL)
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    await ensure_bootstrap_key(sessions, SecretStr("cp_embedded"))
    readmodel, publisher, registry = ReadModel(), RecordingPublisher(), CollectorRegistry()
    app = FastAPI()
    install(app, settings, readmodel, sessions, publisher, registry)
    readmodel.apply(make_snapshot("r1", "t1", datetime.now(UTC), dials=8))
    headers = {"Authorization": "Bearer cp_embedded"}
    try:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://x", headers=headers
        ) as c:
            assert (await c.get("/v1/reps/r1/kpis")).json()["dials"] == 8
            put = await c.put(
                "/v1/reps/r1/targets", json={"targets": [{"kpi": "dials", "value": 50}]}
            )
            assert put.status_code == 200
    finally:
        await engine.dispose()
    [record] = publisher.records
    assert record.key() == "targets:rep:r1"
    assert b'callpulse_team_dials{team_id="t1",window="today"} 8.0' in generate_latest(registry)


async def test_an_embedding_app_submits_alerts_and_runs_alert_tasks(tmp_path: Path) -> None:
    settings = ApiSettings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/embedded.db")
    engine = create_engine(settings.DATABASE_URL)
    await migrate(engine)
    readmodel = ReadModel()
    app = FastAPI()
    ctx = install(
        app,
        settings,
        readmodel,
        create_sessionmaker(engine),
        RecordingPublisher(),
        CollectorRegistry(),
    )
    subscription = readmodel.subscribe("t1")
    firing = make_alert("a1")
    try:
        async with alert_tasks(app):
            ctx.alerts.submit(firing)  # synchronous, as the embedded engine calls it
            ctx.alerts.submit(firing)
            async with asyncio.timeout(30):
                event = await subscription.get()
    finally:
        await engine.dispose()
    assert isinstance(event, AlertEvent)
    assert (event.alert, event.seq) == (firing, 1)
