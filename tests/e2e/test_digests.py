"""End to end: a team's daily and weekly digests reach a real SMTP server (aiosmtpd) and a
signed webhook at the team's local time, exactly once with two API processes on one
PostgreSQL, and not again after one of them restarts.

The processes' digest clocks start (CALLPULSE_DIGEST_CLOCK_START) a few seconds before 18:00
in New York on Wednesday 2026-03-11, the week of the DST change, over generated history.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook

from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker, migrate
from tests.e2e.scenario import ADMIN_KEY, SECRET, free_port, process, wait_http
from tests.integration.api.coaching_history import generate

pytestmark = pytest.mark.timeout(240)
CLOCK_START = datetime(2026, 3, 11, 17, 59, 57, tzinfo=ZoneInfo("America/New_York"))


class Mailbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on a free local port."""
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[tuple[list[tuple[dict[str, str], bytes]], str]]:
    """A local webhook receiver keeping every POST (headers, body)."""
    posts: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield posts, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


def _store_history(url: str, prefix: str) -> tuple[str, list[str]]:
    history = generate(prefix)
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


def _forget(url: str, team: str) -> None:
    """Leave no digest settings behind: other runs' schedulers would send them."""

    async def forget() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                from sqlalchemy import text

                await connection.execute(
                    text("DELETE FROM digest_settings WHERE team_id = :t"), {"t": team}
                )
        finally:
            await engine.dispose()

    asyncio.run(forget())


def _wait(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_daily_and_weekly_digests_go_out_once_with_two_processes(
    postgres_url: str,
    mailbox: tuple[Mailbox, int],
    receiver: tuple[list[tuple[dict[str, str], bytes]], str],
    tmp_path: Path,
) -> None:
    box, smtp_port = mailbox
    posts, hook_url = receiver
    team, reps = _store_history(postgres_url, f"d{uuid.uuid4().hex[:8]}")
    env = {
        "CALLPULSE_DATABASE_URL": postgres_url,
        "CALLPULSE_KAFKA_BOOTSTRAP": "",
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_DIGEST_POLL_SECONDS": "0.2",
        "CALLPULSE_DIGEST_CLOCK_START": CLOCK_START.isoformat(),
        "CALLPULSE_SMTP_HOST": "127.0.0.1",
        "CALLPULSE_SMTP_PORT": str(smtp_port),
        "CALLPULSE_SMTP_STARTTLS": "false",
    }
    ports = [free_port(), free_port(), free_port()]

    def api(n: int) -> Any:
        args = ["uvicorn", "--factory", "services.api.app:app_from_env", "--port", str(ports[n])]
        return process(args, env, tmp_path / f"api{n}.log")

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        with api(0) as first, api(1) as second:
            base = f"http://127.0.0.1:{ports[0]}"
            wait_http(f"{base}/healthz", proc=first)
            wait_http(f"http://127.0.0.1:{ports[1]}/healthz", proc=second)
            with httpx.Client(base_url=base, headers=headers) as client:
                put = client.put(f"/v1/teams/{team}", json={"timezone": "America/New_York"})
                assert put.is_success, put.text
                for rep in reps:
                    assert client.put(f"/v1/reps/{rep}", json={"team_id": team}).is_success
                channels = [{"type": "webhook", "url": hook_url, "secret": SECRET}]
                put = client.put(f"/v1/teams/{team}/channels", json={"channels": channels})
                assert put.is_success, put.text
                digest = {
                    "language": "zh-CN",
                    "daily_at": "18:00",
                    "weekly_day": 3,
                    "weekly_at": "18:00",
                    "emails": ["lead@example.com", "coach@example.com"],
                }
                put = client.put(f"/v1/teams/{team}/digest", json=digest)
                assert put.is_success, put.text

            def mine() -> list[dict[str, Any]]:
                bodies = [json.loads(body) for _, body in posts]
                return [b for b in bodies if b.get("team_id") == team]

            def mails() -> list[EmailMessage]:
                parsed = [
                    message_from_bytes(m.content, _class=EmailMessage, policy=policy.default)
                    for m in box.messages
                ]
                return [m for m in parsed if team in str(m["subject"])]

            _wait(lambda: len(mine()) >= 2 and len(mails()) >= 2)
            time.sleep(3)  # both processes tick ~15 more times: nothing more may arrive
            first.terminate()
            first.wait(timeout=20)
            with api(2) as third:
                wait_http(f"http://127.0.0.1:{ports[2]}/healthz", proc=third)
                time.sleep(3)  # the restarted process finds both digests claimed

        kinds = sorted(b["kind"] for b in mine())
        assert kinds == ["daily", "weekly"]
        assert {b["period_key"] for b in mine()} == {"2026-03-11", "2026-W11"}
        for headers_, body in posts:
            Webhook(SECRET).verify(body, headers_)  # raises unless correctly signed
        daily = next(b for b in mine() if b["kind"] == "daily")
        assert daily["language"] == "zh-CN"
        assert daily["title"].startswith("每日简报")
        assert daily["period"]["start"] == "2026-03-11T00:00:00-04:00"
        assert [s["stage"] for s in daily["funnel"]] == [
            "dials",
            "connects",
            "conversations",
            "conversions",
        ]

        subjects = sorted(str(m["subject"]) for m in mails())
        assert subjects == [
            f"每周简报 · 团队 {team} · 2026-W11",
            f"每日简报 · 团队 {team} · 2026-03-11",
        ]
        for mail in mails():
            assert sorted(a.addr_spec for a in mail["to"].addresses) == [
                "coach@example.com",
                "lead@example.com",
            ]
            body = mail.get_content()
            assert "团队漏斗" in body
    finally:
        _forget(postgres_url, team)
