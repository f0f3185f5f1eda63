"""Migration 0003 backfills the facts of calls stored before it exactly as `legacy_facts`
derives them for records without facts (on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from schemas.calls import CallRecord
from services.api.db import repository
from services.api.db.engine import alembic_config
from services.api.db.models import Call, CallFactRow
from tests.unit.api.calls import calls

T0 = datetime(2026, 3, 14, 23, 58, 0, tzinfo=timezone(timedelta(hours=8)))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(call_id: str, **fields: Any) -> CallRecord:
    base: dict[str, Any] = {
        "call_id": call_id,
        "version": 3,
        "rep_id": "r1",
        "team_id": "t1",
        "direction": "outbound",
        "last_event_at": at(3600),
    }
    return CallRecord.model_validate({**base, **fields})


def talked(start: float, answer: float | None, seconds: float) -> dict[str, Any]:
    return {
        "started_at": at(start),
        "answered_at": None if answer is None else at(answer),
        "ended_at": at((answer or start) + seconds),
        "end_status": "completed",
        "talk_seconds": seconds,
        "connected": True,
    }


LEGACY: list[CallRecord] = [
    record(
        "full",
        **talked(0, 10, 400),
        outcome="sale",
        outcome_at=at(500),
        amount=Decimal("99.5"),
        csat=5,
    ),
    record("end-only", ended_at=at(30), end_status="no_answer"),
    record("answer-only", answered_at=at(40), connected=True),
    record("inbound", direction="inbound", **talked(0, 5, 12.345)),
    record("inbound-missed", direction="inbound", started_at=at(0), ended_at=at(20)),
    record("no-direction", direction=None, started_at=at(100)),
    record("no-answer-event", **talked(-10, None, 40)),  # connected by its completed end
    record("under", **talked(0, 1, 299.999)),
    record("at-threshold", **talked(0, 1, 300)),
    record(
        "stale",
        started_at=at(0),
        answered_at=at(5),
        ended_at=at(4 * 3600),
        end_status="failed",
        connected=True,
        stale_closed=True,
    ),
    record("free-sale", outcome="sale", outcome_at=at(60), amount=Decimal(0), started_at=at(0)),
    record("sale-no-amount", outcome="sale", outcome_at=at(60), started_at=at(0)),
    record("lost", outcome="not_interested", outcome_at=at(60), started_at=at(0), csat=2),
    record("no-rep", rep_id=None, **talked(0, 1, 500), outcome="sale", outcome_at=at(600)),
    *calls("r2", "t2"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/backfill.db")
        yield engine
        await engine.dispose()
        return
    url: str = request.getfixturevalue("postgres_url")
    schema = f"backfill_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()


async def alembic(engine: AsyncEngine, action: str, revision: str) -> None:
    """Upgrade or downgrade the database to `revision`, as `migrate()` runs Alembic."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def test_the_backfill_derives_what_legacy_facts_derives(fresh_engine: AsyncEngine) -> None:
    await alembic(fresh_engine, "upgrade", "0002")
    columns = {c.name for c in Call.__table__.c}
    rows = [{**r.model_dump(include=columns), "updated_at": T0} for r in LEGACY]
    async with fresh_engine.begin() as connection:
        await connection.execute(insert(Call), rows)

    await alembic(fresh_engine, "upgrade", "head")

    fact = CallFactRow
    stmt = select(fact.call_id, fact.kpi, fact.at, fact.value, fact.rep_id, fact.team_id)
    async with fresh_engine.connect() as connection:
        backfilled = {tuple(row) for row in await connection.execute(stmt)}
    derived = {
        (r.call_id, f.kpi, f.at, f.value, r.rep_id, r.team_id)
        for r in LEGACY
        for f in repository.legacy_facts(r)
    }
    assert backfilled == derived
    assert {(call_id, kpi) for call_id, kpi, *_ in derived} >= {
        ("full", "revenue"),
        ("full", "csat_sum"),
        ("end-only", "dials"),
        ("inbound", "inbound_calls"),
        ("at-threshold", "conversations"),
        ("free-sale", "conversions"),
    }

    await alembic(fresh_engine, "downgrade", "0002")
    async with fresh_engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    assert "call_facts" not in tables
    assert "calls" in tables
