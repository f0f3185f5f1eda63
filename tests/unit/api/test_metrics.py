"""Business metrics rendered from the read model at scrape time; they pass promtool."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.metrics import ReadModelCollector
from services.api.readmodel import ReadModel
from tests.unit.api.snapshots import make_snapshot


@pytest.fixture
async def exposition(tmp_path: Path) -> str:
    settings = ApiSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db",
        BOOTSTRAP_ADMIN_KEY=SecretStr("cp_metrics"),
        REP_METRICS_CAP=2,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        readmodel = app.state.callpulse_api.readmodel
        now = datetime.now(UTC)
        readmodel.apply(make_snapshot("a", "t1", now, dials=4, connects=2, talk_seconds=100))
        readmodel.apply(make_snapshot("b", "t1", now, status="on_call", dials=6))
        readmodel.apply(make_snapshot("c", "t2", now, dials=1))
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            await client.get("/v1/teams/t1/kpis", headers={"Authorization": "Bearer cp_metrics"})
            response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_team_series_for_every_window(exposition: str) -> None:
    dials = samples(exposition, "callpulse_team_dials")
    assert dials[(("team_id", "t1"), ("window", "today"))] == 10
    assert dials[(("team_id", "t2"), ("window", "month"))] == 1
    ratio = samples(exposition, "callpulse_team_connect_ratio")
    assert ratio[(("team_id", "t1"), ("window", "today"))] == 0.2
    reps = samples(exposition, "callpulse_team_reps")
    assert reps[(("status", "on_call"), ("team_id", "t1"))] == 1


def test_rep_series_up_to_the_cap(exposition: str) -> None:
    dials = samples(exposition, "callpulse_rep_dials")
    assert sorted(dict(labels)["rep_id"] for labels in dials) == ["a", "b"]
    assert samples(exposition, "callpulse_api_rep_series_omitted") == {(): 1}


def test_requests_are_counted_by_route_template(exposition: str) -> None:
    requests = samples(exposition, "callpulse_api_http_requests_total")
    key = (("method", "GET"), ("route", "/v1/teams/{team_id}/kpis"), ("status", "200"))
    assert requests[key] == 1


def test_promtool_accepts_the_exposition(exposition: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrapes_follow_changes_between_them() -> None:
    now = datetime(2025, 3, 12, 23, 50, tzinfo=UTC)
    clock = [now]
    readmodel = ReadModel(clock=lambda: clock[0])
    registry = CollectorRegistry()
    registry.register(ReadModelCollector(readmodel, rep_cap=10))

    def scrape(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return samples(generate_latest(registry).decode(), name)

    def today(team_id: str) -> tuple[tuple[str, str], ...]:
        return (("team_id", team_id), ("window", "today"))

    readmodel.apply(make_snapshot("a", "t1", now - timedelta(seconds=2), dials=3))
    readmodel.apply(make_snapshot("b", "t1", now - timedelta(seconds=2), dials=4))
    readmodel.apply(make_snapshot("c", "t2", now - timedelta(seconds=2), dials=5))
    assert scrape("callpulse_team_dials")[today("t1")] == 7

    readmodel.apply(make_snapshot("b", "t1", now - timedelta(seconds=1), dials=6, status="on_call"))
    assert scrape("callpulse_team_dials")[today("t1")] == 9
    assert scrape("callpulse_team_reps")[(("status", "on_call"), ("team_id", "t1"))] == 1

    readmodel.apply(make_snapshot("a", "t2", now, dials=3))  # a moves team
    dials = scrape("callpulse_team_dials")
    assert (dials[today("t1")], dials[today("t2")]) == (6, 8)
    rep_dials = scrape("callpulse_rep_dials")
    assert rep_dials[(("rep_id", "a"), ("team_id", "t2"), ("window", "today"))] == 3

    readmodel.remove("c")
    assert scrape("callpulse_team_dials")[today("t2")] == 3

    clock[0] = now + timedelta(minutes=15)  # a new day: yesterday's numbers are not today's
    dials = scrape("callpulse_team_dials")
    assert (dials[today("t1")], dials[today("t2")]) == (0, 0)
    assert dials[(("team_id", "t2"), ("window", "week"))] == 3
