"""Reports from the call history on the real PostgreSQL."""

from __future__ import annotations

from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker
from tests.integration.api.conftest import ApiFactory
from tests.unit.api.calls import EXPECTED_DAY, EXPECTED_HOURS, calls, report_day


async def test_daily_and_hourly_reports(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    rep_id, team_id = f"r-{unique}", f"t-{unique}"
    put = await api.client.put(f"/v1/teams/{team_id}", json={"timezone": "Asia/Shanghai"})
    assert put.status_code == 200
    engine = create_engine(api.settings.DATABASE_URL)
    try:
        async with create_sessionmaker(engine).begin() as session:
            await repository.upsert_calls(session, calls(rep_id, team_id))
    finally:
        await engine.dispose()

    params = {"team_id": team_id, "date": report_day().isoformat()}
    daily = (await api.client.get("/v1/reports/daily", params=params)).json()
    assert daily["timezone"] == "Asia/Shanghai"
    assert daily["start"].endswith("+08:00")
    [row] = daily["reps"]
    assert row["rep_id"] == rep_id
    assert {k: row[k] for k in EXPECTED_DAY} == EXPECTED_DAY
    assert {k: daily["totals"][k] for k in EXPECTED_DAY} == EXPECTED_DAY

    hourly = await api.client.get("/v1/reports/hourly", params={"team_id": team_id, "days": 3})
    hours = {h["hour"]: (h["dials"], h["connects"]) for h in hourly.json()["hours"] if h["dials"]}
    assert hours == EXPECTED_HOURS
