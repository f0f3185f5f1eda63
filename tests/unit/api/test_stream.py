"""Server-Sent Events through a real HTTP server (the in-memory transport buffers streams)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from schemas.alerts import Alert
from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.readmodel import ReadModel
from tests.unit.api.snapshots import make_snapshot

KEY = "cp_stream_admin"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, ReadModel]]:
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
    yield f"http://127.0.0.1:{port}", app.state.callpulse_api.readmodel
    server.should_exit = True
    await task


async def events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    kind = ""
    async for line in lines:
        if line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield kind, json.loads(line.removeprefix("data:").strip())


async def test_stream_sends_current_state_then_updates_of_the_team(
    served: tuple[str, ReadModel],
) -> None:
    url, readmodel = served
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


async def test_stream_needs_a_key(served: tuple[str, ReadModel]) -> None:
    url, _ = served
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/v1/stream")
    assert response.status_code == 401
