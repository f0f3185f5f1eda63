"""Competitions end to end in embedded mode, over real HTTP: a one-off and a recurring
competition, signed events with duplicates and reordering, live standings, SSE `competition`
events, frozen results with winners, the announcements a local webhook receiver gets (signed),
and the drill-down list of calls.

The app runs in this process (uvicorn) so the test can move the competitions' clock past the
periods' end instead of waiting for it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI, Request
from standardwebhooks import Webhook

from services.api.competitions.wiring import service_of
from services.standalone.main import create_app
from tests.e2e.scenario import (
    ADMIN_KEY,
    SECRET,
    expected,
    free_port,
    midday_timezone,
    post_batches,
    process,
    scenario,
    signed,
    wait_http,
)

pytestmark = pytest.mark.timeout(180)
RECEIVER_SECRET = SECRET


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
                await asyncio.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        await task


def receiver(received: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        body = await request.body()
        payload = Webhook(RECEIVER_SECRET).verify(body, dict(request.headers))
        received.append(payload)
        return {"ok": True}

    return app


def call_events(
    n: int, rep: str, start: datetime, talk: int, sale: str | None
) -> list[dict[str, Any]]:
    def e(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
        return {
            "event_id": f"{rep}-{n}-{kind}",
            "type": kind,
            "call_id": f"{rep}-c{n}",
            "rep_id": rep,
            "team_id": "t1",
            "occurred_at": at.isoformat(),
            **fields,
        }

    answered = start + timedelta(seconds=5)
    ended = answered + timedelta(seconds=talk)
    events = [
        e("call.started", start, direction="outbound", to="+8613800138000"),
        e("call.answered", answered),
        e("call.ended", ended, end_status="completed", talk_seconds=talk),
    ]
    if sale is not None:
        events.append(e("call.outcome", ended + timedelta(seconds=30), outcome="sale", amount=sale))
    return events


async def sse_competition_events(
    client: httpx.AsyncClient, got: list[dict[str, Any]], ready: asyncio.Event
) -> None:
    with contextlib.suppress(httpx.ReadError):  # the server stops first at the end
        await _read_stream(client, got, ready)


async def _read_stream(
    client: httpx.AsyncClient, got: list[dict[str, Any]], ready: asyncio.Event
) -> None:
    async with client.stream("GET", "/v1/stream", params={"team_id": "t1"}) as response:
        ready.set()
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "competition":
                got.append(json.loads(line.split(":", 1)[1]))
            elif not line:
                event = None


async def eventually(check: Any, deadline: float = 60) -> Any:
    async with asyncio.timeout(deadline):
        while not (result := await check()):  # noqa: ASYNC110 - polling the API is the test
            await asyncio.sleep(0.3)
        return result


async def test_competitions_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A zone where it is around noon now: "today" and "the last hour" are the same local day.
    tz = midday_timezone(datetime.now(UTC))
    for name, value in {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_TIMEZONE": tz,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CALLPULSE_DATABASE_URL", raising=False)
    monkeypatch.delenv("CALLPULSE_KAFKA_BOOTSTRAP", raising=False)
    app = create_app(tmp_path / "data")
    port, hook_port = free_port(), free_port()
    received: list[dict[str, Any]] = []
    now = datetime.now(UTC).astimezone(ZoneInfo(tz)).replace(second=0, microsecond=0)
    base = f"http://127.0.0.1:{port}"
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        serving(receiver(received), hook_port),
        serving(app, port),
        httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as api,
    ):
        for path, body in (
            ("/v1/teams/t1", {"name": "一组", "timezone": tz}),
            ("/v1/reps/ann", {"name": "Ann", "team_id": "t1"}),
            ("/v1/reps/bo", {"name": "波", "team_id": "t1"}),
            (
                "/v1/teams/t1/channels",
                {
                    "channels": [
                        {
                            "type": "webhook",
                            "url": f"http://127.0.0.1:{hook_port}/hook",
                            "secret": RECEIVER_SECRET,
                        }
                    ]
                },
            ),
        ):
            response = await api.put(path, json=body)
            assert response.status_code < 300, (path, response.text)
        start = (now - timedelta(hours=2)).replace(tzinfo=None)
        once = {
            "name": "Sprint 冲刺",
            "participants": {"team_ids": ["t1"]},
            "score": [{"kpi": "conversions", "weight": 10}, {"kpi": "conversations", "weight": 1}],
            "minimums": [{"kpi": "avg_talk_seconds", "at_least": 120}],
            "default_target": 30,
            "period": {
                "kind": "once",
                "start": start.isoformat(),
                "end": (now + timedelta(hours=1)).replace(tzinfo=None).isoformat(),
            },
        }
        daily = {**once, "name": "Daily dials", "score": [{"kpi": "dials"}], "minimums": []}
        daily["period"] = {"kind": "daily"}
        ids = []
        for body in (once, daily):
            created = await api.post("/v1/competitions", json=body)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        once_id, daily_id = ids

        sse: list[dict[str, Any]] = []
        ready = asyncio.Event()
        reader = asyncio.create_task(sse_competition_events(api, sse, ready))
        async with asyncio.timeout(30):
            await ready.wait()

        # Ann: 2 sales, both conversations (2 x 11 = 22); Bo: 1 sale + 1 conversation (11 + 1).
        t = now - timedelta(minutes=50)
        events = (
            call_events(1, "ann", t, 400, "100")
            + call_events(2, "ann", t + timedelta(minutes=10), 320, "50")
            + call_events(3, "bo", t, 330, "20")
            + call_events(4, "bo", t + timedelta(minutes=20), 600, None)
        )
        events += random.Random(7).sample(events, 5)  # duplicates: retries of the same events
        random.Random(8).shuffle(events)
        for i in range(0, len(events), 4):
            body = json.dumps(events[i : i + 4]).encode()
            response = await api.post("/v1/events", content=body, headers=signed(body))
            assert response.status_code == 202, response.text

        async def standings() -> dict[str, Any] | None:
            got = (await api.get(f"/v1/competitions/{once_id}/standings")).json()
            scores = {r["participant_id"]: r["score"] for r in got["rows"]}
            return got if scores == {"ann": 22.0, "bo": 12.0} else None

        live = await eventually(standings)
        assert [(r["participant_id"], r["rank"]) for r in live["rows"]] == [("ann", 1), ("bo", 2)]
        assert live["rows"][1]["gap_to_leader"] == 10.0
        assert live["rows"][1]["gap_to_target"] == 18.0
        dials = (await api.get(f"/v1/competitions/{daily_id}/standings")).json()
        assert {r["participant_id"]: r["score"] for r in dials["rows"]} == {"ann": 2.0, "bo": 2.0}
        assert dials["leaders"] == ["ann", "bo"]  # a tie shares rank 1

        # The scores equal the live KPI windows' numbers of the same calls.
        async def today() -> dict[str, Any] | None:
            got = (await api.get("/v1/reps/ann/kpis", params={"window": "today"})).json()
            return got if got.get("dials") == 2 else None

        kpis = await eventually(today)
        assert (kpis["conversions"], kpis["conversations"]) == (2, 2)

        await eventually(lambda: _async(any(e["competition_id"] == once_id for e in sse)))
        last = [e for e in sse if e["competition_id"] == once_id][-1]
        assert [r["participant_id"] for r in last["rows"]] == ["ann", "bo"]

        drill = (await api.get("/v1/reps/ann/calls", params={"competition_id": once_id})).json()
        assert {c["call_id"]: c["points"] for c in drill["calls"]} == {
            "ann-c1": 11.0,
            "ann-c2": 11.0,
        }
        assert drill["calls"][0]["talk_seconds"] == 400

        # A day later both periods have ended: frozen, with their winners, and announced.
        service = service_of(app)
        service.clock = lambda: datetime.now(UTC) + timedelta(days=1)
        await service.tick()
        [result] = (await api.get(f"/v1/competitions/{once_id}/results")).json()
        assert result["winners"] == ["ann"]
        [day] = (await api.get(f"/v1/competitions/{daily_id}/results")).json()
        assert day["winners"] == ["ann", "bo"]
        assert day["period"]["key"] == now.date().isoformat()

        async def announced() -> bool:
            kinds = {(a["competition_id"], a["kind"]) for a in received}
            return {(once_id, "start"), (once_id, "winners"), (daily_id, "winners")} <= kinds

        await eventually(announced)
        winners = next(
            a for a in received if a["kind"] == "winners" and a["competition_id"] == once_id
        )
        assert "ann" in winners["message_en"]
        assert "冠军" in winners["message_zh"]
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _async(value: bool) -> bool:
    return value


# ---------------------------------------------------------------- the wallboard in Chromium

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
"""`CALLPULSE_UPDATE_SCREENSHOTS=1` writes the screenshots there (the README shows them);
otherwise they go to the test's temporary folder, so a test run leaves the tree clean."""


class Page:
    """One Chromium tab driven over the DevTools protocol (a websocket, no third-party driver)."""

    def __init__(self, socket: Any, shots: Path) -> None:
        self.socket, self.next_id, self.shots = socket, 0, shots

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        await self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == ident:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def until(self, expression: str, deadline: float = 30) -> Any:
        async def check() -> Any:
            return await self.js(expression)

        return await eventually(check, deadline)

    async def screenshot(self, name: str) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        self.shots.mkdir(parents=True, exist_ok=True)
        (self.shots / name).write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def chromium_page(profile: Path, shots: Path) -> AsyncIterator[Page]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium is not installed: `apt-get install -y chromium` (Debian)"
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1920,1080",
        f"--remote-debugging-port={port}",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as devtools:

            async def target() -> str | None:
                try:
                    pages = (await devtools.get("/json/list")).json()
                except httpx.HTTPError:
                    return None
                found = [p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page"]
                return found[0] if found else None

            url = await eventually(target, 30)
        async with websockets.connect(url, max_size=50_000_000) as socket:
            page = Page(socket, shots)
            await page.call("Page.enable")
            await page.call("Runtime.enable")
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=1920,
                height=1080,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield page
    finally:
        proc.terminate()
        await proc.wait()


async def test_wallboard_competitions_celebration_and_tv_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A zone where it is around noon now: "today" and "the last hour" are the same local day.
    tz = midday_timezone(datetime.now(UTC))
    for name, value in {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_TIMEZONE": tz,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CALLPULSE_DATABASE_URL", raising=False)
    monkeypatch.delenv("CALLPULSE_KAFKA_BOOTSTRAP", raising=False)
    app = create_app(tmp_path / "data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    now = datetime.now(UTC).astimezone(ZoneInfo(tz)).replace(second=0, microsecond=0)
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    reps = {"ann": "Ann Lee", "bo": "王波", "cy": "Cyril", "di": "李迪"}
    async with (
        serving(app, port),
        httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as api,
    ):
        assert (await api.put("/v1/teams/t1", json={"name": "一组", "timezone": tz})).is_success
        for rep, name in reps.items():
            assert (
                await api.put(f"/v1/reps/{rep}", json={"name": name, "team_id": "t1"})
            ).is_success
        sprint = {
            "name": "Friday sprint 周五冲刺",
            "participants": {"team_ids": ["t1"]},
            "score": [{"kpi": "conversions", "weight": 10}, {"kpi": "conversations", "weight": 1}],
            "default_target": 40,
            "period": {"kind": "daily"},
        }
        assert (await api.post("/v1/competitions", json=sprint)).status_code == 201
        t = now - timedelta(minutes=40)
        events: list[dict[str, Any]] = []
        for i, (rep, sales) in enumerate({"ann": 3, "bo": 2, "cy": 1, "di": 0}.items()):
            for n in range(sales + 1):
                sale = "80" if n < sales else None
                events += call_events(10 * i + n, rep, t + timedelta(minutes=3 * n), 320, sale)
        body = json.dumps(events).encode()
        assert (await api.post("/v1/events", content=body, headers=signed(body))).status_code == 202

        async def standing() -> bool:
            got = (await api.get("/v1/competitions/1/standings")).json()
            return [r["participant_id"] for r in got["rows"]][:1] == ["ann"]

        await eventually(standing)
        for lang in ("en", "zh"):
            update = os.environ.get("CALLPULSE_UPDATE_SCREENSHOTS") == "1"
            shots = DOCS if update else tmp_path / "screenshots"
            async with chromium_page(tmp_path / f"chrome-{lang}", shots) as page:
                await page.call("Page.navigate", url=f"{base}/?key={ADMIN_KEY}&team=t1&lang={lang}")
                await page.until("document.querySelectorAll('#competitions .racer').length === 4")
                await page.until("document.getElementById('conn').dataset.state === 'live'")
                names = await page.js(
                    "[...document.querySelectorAll('#competitions .racer .who')]"
                    ".map(e => e.textContent)"
                )
                assert names == ["Ann Lee", "王波", "Cyril", "李迪"]
                # A sale lands while the board is open: the banner names the rep and the amount.
                n = 90 + (lang == "zh")
                sale = call_events(n, "di", now - timedelta(minutes=2), 330, "1250")
                body = json.dumps(sale).encode()
                assert (await api.post("/v1/events", content=body, headers=signed(body))).is_success
                text = await page.until(
                    "!document.getElementById('celebration').hidden && "
                    "document.getElementById('celebration').textContent"
                )
                assert "李迪" in text
                assert "1,250" in text or "1250" in text
                await asyncio.sleep(0.8)  # the banner's entrance animation
                await page.screenshot(f"competitions-celebration-{lang}.png")
                await page.until("document.getElementById('celebration').hidden", 15)
                await page.screenshot(f"competitions-board-{lang}.png")
                # TV mode rotates floor -> leaderboard -> competitions.
                await page.call(
                    "Page.navigate",
                    url=f"{base}/?key={ADMIN_KEY}&team=t1&lang={lang}&tv=1&rotate=3&tv_view=competitions",
                )
                await page.until("document.body.dataset.tv === 'competitions'")
                await page.until("document.querySelectorAll('#competitions .racer').length === 4")
                await page.screenshot(f"competitions-tv-{lang}.png")
                await page.until("document.body.dataset.tv === 'floor'", 10)
                await page.until("document.body.dataset.tv === 'leaders'", 10)


# ---------------------------------------------------------------- embedded and distributed


def _standings_once_equal(base: str, competition: dict[str, Any], want: dict[str, float]) -> Any:
    """Create the competition, then poll its standings until the scores are `want`."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        created = client.post("/v1/competitions", json=competition)
        assert created.status_code == 201, created.text
        path = f"/v1/competitions/{created.json()['id']}"
        deadline = time.monotonic() + 90
        got: dict[str, Any] = {}
        try:
            while time.monotonic() < deadline:
                got = client.get(f"{path}/standings").json()
                if {r["participant_id"]: r["score"] for r in got["rows"]} == want:
                    return got
                time.sleep(0.5)
        finally:
            client.delete(path)  # the test database is shared: leave nothing running in it
    raise AssertionError(f"standings {got} never reached {want}")


def test_same_standings_embedded_and_distributed(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    """One scenario (a duplicate, an out-of-order pair, an outcome corrected, an inbound call
    whose rep appears on answer) through `callpulse run` and through ingest + Faust + API: the
    same standings, and the scores the reference fold's today KPIs give."""
    run = f"cmp{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    events, batches = scenario(run, now)
    today = expected(events, now, tz)
    reps = sorted(today)
    competition = {
        "name": "modes",
        "timezone": tz,
        "participants": {"rep_ids": reps},
        "score": [
            {"kpi": "conversions", "weight": 10},
            {"kpi": "talk_seconds", "weight": 0.01},
            {"kpi": "dials", "weight": 1},
        ],
        "minimums": [{"kpi": "connects", "at_least": 1}],
        "period": {"kind": "daily"},
    }
    want = {
        rep: round(10 * k["conversions"] + 0.01 * k["talk_seconds"] + k["dials"], 6)
        for rep, k in today.items()
    }
    common = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": tz,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
    }
    port = free_port()
    embedded_url = f"http://127.0.0.1:{port}"
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    with process(args, common, tmp_path / "run.log") as server:
        wait_http(f"{embedded_url}/readyz", proc=server)
        post_batches(embedded_url, batches)
        embedded = _standings_once_equal(embedded_url, competition, want)

    topics = {
        f"CALLPULSE_{name.upper()}_TOPIC": f"{run}.{name}"
        for name in ("events", "facts", "kpis", "calls", "alerts", "roster")
    }
    env = {
        **common,
        **topics,
        "CALLPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CALLPULSE_DATABASE_URL": postgres_url,
        "CALLPULSE_APP_ID": f"{run}-aggregator",
        "CALLPULSE_PARTITIONS": "3",
        "CALLPULSE_WEB_PORT": str(free_port()),
        "CALLPULSE_DATA_DIR": str(tmp_path / "faust"),
        "CALLPULSE_CONSUMER_GROUP_PREFIX": run,
    }
    ingest_port, api_port = free_port(), free_port()
    ingest_url, api_url = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
    with (
        process(["services.cli", "aggregator", "--loglevel", "warning"], env, tmp_path / "agg.log"),
        process(
            ["services.cli", "ingest", "--port", str(ingest_port)], env, tmp_path / "in.log"
        ) as ingest,
        process(["services.cli", "api", "--port", str(api_port)], env, tmp_path / "api.log") as api,
    ):
        wait_http(f"{ingest_url}/readyz", proc=ingest)
        wait_http(f"{api_url}/healthz", proc=api)
        post_batches(ingest_url, batches)
        distributed = _standings_once_equal(api_url, competition, want)

    def table(standings: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (r["participant_id"], r["rank"], r["score"], r["qualified"], r["kpis"])
            for r in standings["rows"]
        ]

    assert table(embedded) == table(distributed)
    assert embedded["period"] == distributed["period"]
