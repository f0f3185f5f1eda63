"""The coaching page in real headless Chromium, served by the distributed API (uvicorn,
PostgreSQL) over five generated weeks of a New York team: a supervisor sees a rep's scorecard
with findings, the weekly trend, the funnel, the heatmap and who is below the team, in English
and Chinese; a `rep` key sees its own scorecard only. Screenshots of both languages go to
docs/screenshots when CALLPULSE_COACHING_SCREENSHOTS=docs/screenshots is set.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker, migrate
from tests.e2e.scenario import ADMIN_KEY, free_port, process, wait_http
from tests.e2e.test_wallboard import Tab, chromium, devtools
from tests.integration.api.coaching_history import generate

pytestmark = pytest.mark.timeout(240)
NAMES = ["Ava Chen", "Ben Li", "Chloe Wang", "Dan Zhou", "Eve Sun", "Finn Xu"]
READY = "document.body.dataset.ready === '1'"


def _history(url: str, prefix: str) -> tuple[str, list[str]]:
    history = generate(prefix, reps_per_team=6, calls_per_day=40)
    team = next(t for t, tz in history.teams.items() if tz == "America/New_York")

    async def store() -> None:
        await migrate(url)
        engine = create_engine(url)
        try:
            async with create_sessionmaker(engine).begin() as session:
                await repository.upsert_calls(session, history.records())
        finally:
            await engine.dispose()

    asyncio.run(store())
    return team, sorted(r for r, t in history.reps.items() if t == team)


def _page(tab: Tab, url: str, width: int = 1440, height: int = 1640) -> dict[str, Any]:
    tab.open(url, width, height)
    tab.wait(f"{READY} || document.body.dataset.ready === 'error'")
    shown: dict[str, Any] = tab.evaluate(
        """(() => ({
          ready: document.body.dataset.ready,
          notice: document.getElementById('notice').textContent,
          lines: [...document.querySelectorAll('#lines tr[data-kpi]')].map(
            (r) => [r.dataset.kpi, r.querySelector('.value').textContent]),
          findings: [...document.querySelectorAll('#findings li')].map((li) => li.textContent),
          charts: document.querySelectorAll('#trend .chart path.line').length,
          stages: [...document.querySelectorAll('#funnel .stage')].map((s) => s.dataset.stage),
          losses: document.querySelectorAll('#losses tr[data-reason]').length,
          cells: document.querySelectorAll('#heatmap [data-cell]').length,
          colored: [...document.querySelectorAll('#heatmap .cell:not(.sparse)')].length,
          rankings: document.querySelectorAll('#ranking table').length,
          hidden: [...document.querySelectorAll('section.team-only')].map((s) => s.hidden),
          campaigns: [...document.querySelectorAll('#campaign option')].map((o) => o.value),
          title: document.querySelector('h1').textContent,
          lang: document.documentElement.lang,
        }))()"""
    )
    return shown


def test_the_coaching_page_in_a_browser(postgres_url: str, tmp_path: Path) -> None:
    browser = chromium()
    team, reps = _history(postgres_url, f"p{uuid.uuid4().hex[:8]}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "CALLPULSE_DATABASE_URL": postgres_url,
        "CALLPULSE_KAFKA_BOOTSTRAP": "",
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
    }
    args = ["uvicorn", "--factory", "services.api.app:app_from_env", "--port", str(port)]
    shots = {lang: tmp_path / f"coaching-{lang}.png" for lang in ("en", "zh")}
    with process(args, env, tmp_path / "api.log") as api:
        wait_http(f"{base}/healthz", proc=api)
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=base, headers=headers) as client:
            put = client.put(
                f"/v1/teams/{team}", json={"name": "New York", "timezone": "America/New_York"}
            )
            assert put.is_success, put.text
            for rep, name in zip(reps, NAMES, strict=True):
                assert client.put(
                    f"/v1/reps/{rep}", json={"team_id": team, "name": name}
                ).is_success
            targets = [
                {"kpi": "avg_talk_seconds", "window": "week", "value": 300},
                {"kpi": "dials", "window": "week", "value": 60},
                {"kpi": "conversions", "window": "week", "value": 8},
                {"kpi": "connect_rate", "window": "week", "value": 0.5},
            ]
            assert client.put(f"/v1/teams/{team}/targets", json={"targets": targets}).is_success
            rep_key = client.post(f"/v1/reps/{reps[1]}/keys").json()["key"]

        page = client_page = f"{base}/coaching?" + urlencode(
            {"key": ADMIN_KEY, "team": team, "rep": reps[0], "period": "week", "date": "2026-03-11"}
        )
        with devtools(browser, tmp_path / "profile") as tab:
            shown = _page(tab, page)
            assert shown["ready"] == "1", shown["notice"]
            assert len(shown["lines"]) == 11
            counts = [v for kpi, v in shown["lines"] if kpi in ("dials", "connects")]
            assert all(v.replace(",", "").isdigit() for v in counts), counts
            assert shown["findings"]
            assert shown["charts"] == 3
            assert shown["stages"] == ["dials", "connects", "conversations", "conversions"]
            assert shown["losses"] > 0
            assert shown["cells"] == 7 * 24
            assert shown["colored"] > 0
            assert shown["rankings"] == 4
            assert shown["campaigns"] == ["", "none", "renewal", "spring"]
            assert shown["hidden"] == [False, False, False]
            assert "Ava Chen" in shown["title"]
            tab.screenshot(shots["en"])

            zh = _page(tab, client_page.replace("key=", "lang=zh&key="))
            assert zh["ready"] == "1", zh["notice"]
            assert zh["lang"] == "zh-CN"
            assert "辅导" in zh["title"]
            english = [f for f in zh["findings"] if f.isascii()]
            assert not english, english
            tab.screenshot(shots["zh"])

        with devtools(browser, tmp_path / "profile-rep") as tab:
            own = _page(
                tab, f"{base}/coaching?" + urlencode({"key": rep_key, "date": "2026-03-11"})
            )
            assert own["ready"] == "1", own["notice"]
            assert own["hidden"] == [True, True, True]
            assert "Ben Li" in own["title"]
            assert own["charts"] == 3
            assert len(own["lines"]) == 11

    for path in shots.values():
        assert path.stat().st_size > 20_000
    keep = os.environ.get("CALLPULSE_COACHING_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for path in shots.values():
            shutil.copy(path, Path(keep) / path.name)
