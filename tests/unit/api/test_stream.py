"""Server-Sent Events through a real HTTP server (the in-memory transport buffers streams)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from schemas.alerts import Alert
from services.api.alerts.service import AlertService
from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.readmodel import ReadModel
from tests.unit.api.alerts import make_alert, resolve
from tests.unit.api.snapshots import make_snapshot
from tests.unit.api.sse import alert_frames, events

KEY = "cp_stream_admin"


@dataclass
class Served:
    url: str
    readmodel: ReadModel
    alerts: AlertService


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = ApiSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db", BOOTSTRAP_ADMIN_KEY=SecretStr(KEY)
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # startup failed: raise its error
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    ctx = app.state.callpulse_api
    yield Served(f"http://127.0.0.1:{port}", ctx.readmodel, ctx.alerts)
    server.should_exit = True
    await task


async def test_stream_sends_current_state_then_updates_of_the_team(served: Served) -> None:
    url, readmodel = served.url, served.readmodel
    now = datetime.now(UTC)
    readmodel.apply(make_snapshot("a", "t1", now, dials=1))
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client,
        client.stream("GET", "/v1/stream", params={"team_id": "t1"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response.aiter_lines())
        kind, data = await anext(stream)
        assert (kind, data["rep_id"], data["windows"]["today"]["dials"]) == ("kpi", "a", 1)

        readmodel.apply(make_snapshot("other", "t2", now, dials=5))
        readmodel.apply(make_snapshot("b", "t1", now, dials=2))
        kind, data = await anext(stream)
        assert (kind, data["rep_id"]) == ("kpi", "b")

        alert = Alert(
            alert_id="x",
            state="firing",
            kind="pace",
            rule="dials-pace",
            rep_id="b",
            team_id="t1",
            kpi="dials",
            window="today",
            value=2,
            threshold=10,
            message_en="behind",
            message_zh="落后",
            at=now,
            fired_at=now,
        )
        readmodel.publish_alert(alert)
        kind, data = await anext(stream)
        assert (kind, data["alert_id"], data["message_zh"]) == ("alert", "x", "落后")


async def test_stream_needs_a_key(served: Served) -> None:
    url = served.url
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/v1/stream")
    assert response.status_code == 401


async def test_reconnecting_with_last_event_id_replays_missed_alerts(served: Served) -> None:
    alerts = served.alerts
    served.readmodel.apply(make_snapshot("r1", "t1", datetime.now(UTC), dials=1))
    first = make_alert("a1", rep_id="r1", team_id="t1")

    stream = alert_frames(served.url, KEY, team_id="t1")
    start = await anext(stream)
    assert (start[0], start[2]) == ("", None)  # the id-only frame: a point to resume from
    assert start[1] is not None
    await alerts.record([first])
    kind, seen_id, data = await anext(stream)
    assert (kind, data and data["alert_id"]) == ("alert", "a1")
    assert seen_id is not None
    assert int(seen_id) > int(start[1])
    await stream.aclose()  # the client goes away

    # Missed while away: a new alert and a1 resolved (team t1), and another team's alert.
    second = make_alert("a2", rep_id="r2", team_id="t1")
    await alerts.record([second, make_alert("x1", rep_id="r9", team_id="t2")])
    await alerts.record([resolve(first)])

    stream = alert_frames(served.url, KEY, team_id="t1", last_event_id=seen_id)
    replayed = [await anext(stream), await anext(stream)]
    assert [(k, d and (d["alert_id"], d["state"])) for k, _, d in replayed] == [
        ("alert", ("a2", "firing")),
        ("alert", ("a1", "resolved")),
    ]
    ids = [int(i or 0) for _, i, _ in replayed]
    assert int(seen_id) < ids[0] < ids[1]

    await alerts.record([make_alert("a3", rep_id="r1", team_id="t1")])
    kind, live_id, data = await anext(stream)
    assert (kind, data and data["alert_id"]) == ("alert", "a3")
    assert int(live_id or 0) > ids[1]
    await stream.aclose()


async def test_an_unknown_last_event_id_starts_afresh(served: Served) -> None:
    stream = alert_frames(served.url, KEY, team_id="t1", last_event_id="999999999")
    kind, event_id, data = await anext(stream)
    assert (kind, data) == ("", None)
    assert event_id is not None
    assert int(event_id) < 999999999
    await stream.aclose()
