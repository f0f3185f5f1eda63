"""Reports from the call history on the embedded SQLite database (its own hourly path)."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from services.api.app import create_app
from services.api.config import ApiSettings
from tests.unit.api.calls import EXPECTED_DAY, EXPECTED_HOURS, calls, report_day


async def test_reports_on_sqlite(tmp_path: Path) -> None:
    settings = ApiSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db",
        BOOTSTRAP_ADMIN_KEY=SecretStr("cp_reports"),
        TIMEZONE="Asia/Shanghai",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ctx = app.state.callpulse_api
        async with ctx.sessions.begin() as session:
            from services.api.db import repository

            await repository.upsert_calls(session, calls("r1", "t1"))
        transport = httpx.ASGITransport(app)
        headers = {"Authorization": "Bearer cp_reports"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as c:
            daily = await c.get("/v1/reports/daily", params={"date": report_day().isoformat()})
            hourly = await c.get("/v1/reports/hourly", params={"days": 3})
    [row] = daily.json()["reps"]
    assert {k: row[k] for k in EXPECTED_DAY} == EXPECTED_DAY
    hours = {h["hour"]: (h["dials"], h["connects"]) for h in hourly.json()["hours"] if h["dials"]}
    assert hours == EXPECTED_HOURS
