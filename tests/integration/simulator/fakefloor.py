"""A small real HTTP server standing in for callpulse: ingest, roster and rep KPIs on one port.

It verifies Standard Webhooks signatures, can answer the first attempt of every message with a
503, and serves each rep's KPIs as the reference fold of the de-duplicated events it received.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request, Response
from standardwebhooks import Webhook

from schemas.events import CallEvent, parse_event
from services.simulator.truth import ground_truth

ADMIN_KEY = "cp_sim_admin_key"


@dataclass
class FakeFloor:
    """What the fake server saw and how it misbehaves."""

    secret: str | None = None
    fail_first: bool = False
    tamper: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    attempts: list[tuple[str, list[str], int]] = field(default_factory=list)
    events: list[CallEvent] = field(default_factory=list)
    timezones: dict[str, str] = field(default_factory=dict)
    team_zones: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event_ids(self) -> list[str]:
        """Ids of every event accepted, duplicates included."""
        with self.lock:
            return [e.event_id for e in self.events]


def fake_app(floor: FakeFloor) -> FastAPI:
    """The FastAPI app over `floor`."""
    app = FastAPI()
    webhook = Webhook(floor.secret) if floor.secret else None

    @app.post("/v1/events", status_code=202)
    async def ingest(request: Request, response: Response) -> dict[str, int]:
        body = await request.body()
        if webhook is not None:
            webhook.verify(body, dict(request.headers))  # raises: a 500 fails the test loudly
        data = json.loads(body)
        events = [parse_event(item) for item in (data if isinstance(data, list) else [data])]
        msg_id = request.headers.get("webhook-id", "")
        with floor.lock:
            first = all(m != msg_id for m, _, _ in floor.attempts)
            status = 503 if floor.fail_first and first else 202
            floor.attempts.append((msg_id, [e.event_id for e in events], status))
            if status == 202:
                floor.events.extend(events)
        if status == 503:
            response.status_code = 503
            response.headers["retry-after"] = "0"
            return {"accepted": 0}
        return {"accepted": len(events)}

    def admin(authorization: str | None) -> None:
        if authorization != f"Bearer {ADMIN_KEY}":
            raise HTTPException(401, "bad key")

    @app.put("/v1/teams/{team_id}")
    async def put_team(
        team_id: str, body: dict[str, Any], authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        admin(authorization)
        floor.team_zones[team_id] = body["timezone"]
        return body

    @app.put("/v1/reps/{rep_id}")
    async def put_rep(
        rep_id: str, body: dict[str, Any], authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        admin(authorization)
        floor.timezones[rep_id] = floor.team_zones[body["team_id"]]
        return body

    @app.get("/v1/reps/{rep_id}/kpis")
    async def rep_kpis(
        rep_id: str, window: str = "today", authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        admin(authorization)
        with floor.lock:
            events = list(floor.events)
        kpis = ground_truth(events, datetime.now(UTC), floor.timezones).get(rep_id)
        if kpis is None:
            raise HTTPException(404, "unknown rep")
        for (rep, win, kpi), value in floor.tamper.items():
            if (rep, win) == (rep_id, window):
                kpis[window][kpi] = value
        return {"rep_id": rep_id, "window": window, **kpis[window]}

    return app


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
