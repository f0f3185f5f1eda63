"""Reports from the call history on the embedded SQLite database (its own hourly path)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.calls import CallRecord
from schemas.events import parse_event
from schemas.kpis import ADDITIVE, kpi_values
from services.aggregator.domain.calls import CallState, Rules, apply_event, call_record
from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.db import repository
from tests.unit.api.calls import EXPECTED_DAY, EXPECTED_HOURS, ZONE, calls, report_day


@dataclass
class Api:
    """The embedded-mode API: its client (sending an admin key) and its database."""

    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]

    async def store(self, records: Sequence[CallRecord]) -> None:
        async with self.sessions.begin() as session:
            await repository.upsert_calls(session, records)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The API on a fresh SQLite file in Asia/Shanghai."""
    settings = ApiSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db",
        BOOTSTRAP_ADMIN_KEY=SecretStr("cp_reports"),
        TIMEZONE="Asia/Shanghai",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        headers = {"Authorization": "Bearer cp_reports"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as c:
            yield Api(c, app.state.callpulse_api.sessions)


async def test_records_without_facts_get_them_from_their_columns(api: Api) -> None:
    # Records from before 0.2 carry no facts: they count as the migration backfills them.
    await api.store(calls("r1", "t1"))
    daily = await api.client.get("/v1/reports/daily", params={"date": report_day().isoformat()})
    hourly = await api.client.get("/v1/reports/hourly", params={"days": 3})
    [row] = daily.json()["reps"]
    assert {k: row[k] for k in EXPECTED_DAY} == EXPECTED_DAY
    hours = {h["hour"]: (h["dials"], h["connects"]) for h in hourly.json()["hours"] if h["dials"]}
    assert hours == EXPECTED_HOURS


def history_of(raw: Sequence[dict[str, Any]]) -> list[CallRecord]:
    """Every record the aggregator's call assembly emits for these events, in order."""
    states: dict[str, CallState] = {}
    records = []
    for event in (parse_event(r) for r in raw):
        step = apply_event(states.get(event.call_id), event, Rules())
        states[event.call_id] = step.state
        if not step.duplicate:
            records.append(call_record(step.state))
    return records


def local(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=ZONE)


def events(day: date) -> list[dict[str, Any]]:
    """Three calls around the local midnight that starts `day`."""
    eve = day - timedelta(days=1)
    raw: list[dict[str, Any]] = []

    def add(type_: str, call_id: str, at: datetime, **fields: Any) -> None:
        raw.append(
            {
                "type": type_,
                "event_id": f"e{len(raw)}",
                "call_id": call_id,
                "rep_id": "r1",
                "team_id": "t1",
                "occurred_at": at,
                **fields,
            }
        )

    # Only its end arrives: still a dial, when it began (here the end).
    add("call.ended", "end-only", local(day, 10, 0), end_status="no_answer")
    # Starts 10 s before midnight, connects without an answer event: the dial and the connect
    # belong to the evening, the talk to the end.
    add("call.started", "midnight", local(eve, 23, 59, 50))
    add("call.ended", "midnight", local(day, 0, 0, 30), end_status="completed", talk_seconds=40)
    # Talks the evening before; the sale (after a correction) and the survey come after midnight.
    add("call.started", "late", local(eve, 23, 50))
    add("call.answered", "late", local(eve, 23, 50, 10))
    add("call.ended", "late", local(eve, 23, 55), end_status="completed", talk_seconds=290)
    add("call.outcome", "late", local(day, 0, 1), outcome="sale", amount="10")
    add("call.outcome", "late", local(day, 0, 2), outcome="not_interested")
    add("call.outcome", "late", local(day, 0, 3), outcome="sale", amount="20.5")
    add("survey.completed", "late", local(day, 0, 5), csat=4)
    return raw


async def test_each_fact_counts_on_the_day_and_hour_it_lands(api: Api) -> None:
    day = report_day()
    records = history_of(events(day))
    # Every version, the newest first and again at the end: only the newest counts.
    await api.store([*reversed(records), *records])

    async def daily(on: date) -> dict[str, Any]:
        response = await api.client.get("/v1/reports/daily", params={"date": on.isoformat()})
        [row] = response.json()["reps"]
        assert row == {**response.json()["totals"], "rep_id": "r1"}
        return dict(row)

    # Every KPI not named here (a counter declared later) is 0 or null for this day.
    assert await daily(day) == kpi_values(**dict.fromkeys(ADDITIVE, 0)) | {
        "rep_id": "r1",
        "dials": 1,
        "inbound_calls": 0,
        "connects": 0,
        "connect_rate": 0.0,
        "talk_seconds": 40.0,
        "avg_talk_seconds": None,
        "conversations": 0,
        "conversions": 1,
        "conversion_rate": None,
        "revenue": 20.5,
        "avg_deal": 20.5,
        "csat_avg": 4.0,
        "csat_responses": 1,
        "csat_sum": 4,
    }
    eve = await daily(day - timedelta(days=1))
    assert {k: eve[k] for k in ("dials", "connects", "talk_seconds", "conversions")} == {
        "dials": 2,
        "connects": 2,
        "talk_seconds": 290.0,
        "conversions": 0,
    }
    hourly = (await api.client.get("/v1/reports/hourly", params={"days": 3})).json()
    hours = {h["hour"]: (h["dials"], h["connects"], h["connect_rate"]) for h in hourly["hours"]}
    assert {h: p for h, p in hours.items() if p != (0, 0, None)} == {
        10: (1, 0, 0.0),
        23: (2, 2, 1.0),
    }


async def test_a_day_without_facts_is_empty(api: Api) -> None:
    daily = await api.client.get("/v1/reports/daily", params={"date": "2020-01-01"})
    assert daily.status_code == 200
    assert daily.json()["reps"] == []
    assert daily.json()["totals"]["dials"] == 0
