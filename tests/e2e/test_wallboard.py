"""The wallboard in a real browser: `callpulse run`, signed events, headless Chromium.

Chromium runs the page's JavaScript against the embedded server: it reads the key and team from
the URL, loads the team's KPIs, opens the live stream with fetch() and renders. The test reads
the rendered DOM (`--dump-dom`) and keeps a screenshot next to the logs for a human to look at.
Needs the Debian package `chromium` (and `fonts-wqy-microhei` for the Chinese labels).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import IN_CI
from tests.e2e.scenario import (
    ADMIN_KEY,
    SECRET,
    free_port,
    midday_timezone,
    post_batches,
    process,
    wait_http,
)

pytestmark = pytest.mark.timeout(240)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The browser binary; missing: a skip locally, a failure under CI=true."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    message = "Chromium is not installed: `apt-get install -y chromium` (Debian)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def browse(browser: str, url: str, profile: Path, *extra: str) -> str:
    """Run headless Chromium on `url` once; its stdout."""
    args = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=8000",
        "--window-size=1920,1080",
        "--hide-scrollbars",
        *extra,
        url,
    ]
    done = subprocess.run(args, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


class Board(HTMLParser):
    """What the rendered page shows: tiles by KPI, rep rows by rep_id, the live state."""

    def __init__(self) -> None:
        super().__init__()
        self.tiles: dict[str, str] = {}
        self.rows: dict[str, dict[str, str]] = {}
        self.statuses: dict[str, str] = {}
        self.conn = ""
        self.text: list[str] = []
        self._row: str | None = None
        self._tile: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        cls = a.get("class", "").split()
        if tag == "div" and "tile" in cls:
            self._tile = a.get("data-kpi")
        elif tag == "div" and "value" in cls and self._tile:
            self.tiles[self._tile] = a.get("data-value", "")
            self._tile = None
        elif tag == "tr" and "data-rep-id" in a:
            self._row = a["data-rep-id"]
            self.rows[self._row] = {}
            self.statuses[self._row] = a.get("data-status", "")
        elif tag == "td" and self._row and "data-kpi" in a:
            self.rows[self._row][a["data-kpi"]] = a.get("data-value", "")
        elif a.get("id") == "conn":
            self.conn = a.get("data-state", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def floor_events(run: str, team: str, now: datetime) -> tuple[list[list[dict[str, Any]]], int]:
    """Batches of signed-event bodies for three reps of one team, and the team's dials."""
    t = now - timedelta(minutes=30)
    n = 0

    def ev(type_: str, call: str, rep: str, minutes: float, **fields: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {
            "event_id": f"{run}-e{n}",
            "type": type_,
            "call_id": f"{run}-{call}",
            "rep_id": f"{run}-{rep}",
            "team_id": team,
            "occurred_at": (t + timedelta(minutes=minutes)).isoformat(),
            **fields,
        }

    batches = [
        # alice: three dials, two answered, one sale
        [
            ev("call.started", "a1", "alice", 0, direction="outbound"),
            ev("call.answered", "a1", "alice", 0.3),
            ev("call.ended", "a1", "alice", 6.3, end_status="completed"),
            ev("call.outcome", "a1", "alice", 7, outcome="sale", amount="250"),
        ],
        [
            ev("call.started", "a2", "alice", 8, direction="outbound"),
            ev("call.ended", "a2", "alice", 8.5, end_status="no_answer"),
            ev("call.started", "a3", "alice", 10, direction="outbound"),
            ev("call.answered", "a3", "alice", 10.2),
            ev("call.ended", "a3", "alice", 13, end_status="completed"),
        ],
        # bob: two dials, one answered and still on the line
        [
            ev("call.started", "b1", "bob", 12, direction="outbound"),
            ev("call.ended", "b1", "bob", 12.5, end_status="busy"),
            ev("call.started", "b2", "bob", 29, direction="outbound"),
            ev("call.answered", "b2", "bob", 29.4),
        ],
        # carol: one inbound call (no dial) with a survey
        [
            ev("call.started", "c1", "carol", 15, direction="inbound"),
            ev("call.answered", "c1", "carol", 15.1),
            ev("call.ended", "c1", "carol", 20, end_status="completed", direction="inbound"),
            ev("survey.completed", "c1", "carol", 21, csat=5),
        ],
    ]
    return batches, 5


def wait_team(url: str, team: str, dials: int, reps: int, timeout: float = 60) -> dict[str, Any]:
    """Poll the team's KPIs until it has `dials` and `reps` rows."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while time.monotonic() < deadline:
            response = client.get(f"/v1/teams/{team}/kpis")
            if response.status_code == 200:
                body = response.json()
                if body["dials"] == dials and len(body["reps"]) == reps:
                    return body
            time.sleep(0.3)
    raise AssertionError(f"team {team} never reached {dials} dials: {json.dumps(body)[:500]}")


def test_wallboard_shows_the_team_live_in_a_browser(tmp_path: Path) -> None:
    browser = chromium()
    run = f"wb{uuid.uuid4().hex[:8]}"
    team = f"{run}-floor"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    now = datetime.now(UTC)
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": midday_timezone(now),
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
    }
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    batches, dials = floor_events(run, team, now)

    with process(args, env, tmp_path / "server.log") as server:
        wait_http(f"{url}/readyz", proc=server)
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200, "GET / must serve the wallboard"
        with httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
        ) as admin:
            targets = {
                "targets": [{"kpi": "dials", "value": 20}, {"kpi": "conversions", "value": 2}]
            }
            assert admin.put(f"/v1/teams/{team}/targets", json=targets).status_code == 200
            rep = admin.put(f"/v1/reps/{run}-alice", json={"name": "Alice", "team_id": team})
            assert rep.status_code == 200
        post_batches(url, batches)
        api = wait_team(url, team, dials, reps=3)

        query = urlencode({"key": ADMIN_KEY, "team": team, "sort": "dials"})
        html = browse(browser, f"{url}/?{query}", tmp_path / "profile", "--dump-dom")
        browse(
            browser,
            f"{url}/?{query}",
            tmp_path / "profile-shot",
            f"--screenshot={tmp_path / 'wallboard.png'}",
        )
        zh = browse(browser, f"{url}/?{query}&lang=zh", tmp_path / "profile-zh", "--dump-dom")

    board = Board()
    board.feed(html)
    reps = {f"{run}-{name}" for name in ("alice", "bob", "carol")}
    assert set(board.rows) == reps, html[-3000:]
    assert board.tiles["dials"] == str(dials)
    assert board.tiles["conversions"] == "1"
    assert {rep: row["dials"] for rep, row in board.rows.items()} == {
        f"{run}-alice": "3",
        f"{run}-bob": "2",
        f"{run}-carol": "0",
    }
    assert {r["rep_id"]: r["status"] for r in api["reps"]} == board.statuses
    assert board.statuses[f"{run}-bob"] == "on_call"
    text = " ".join(board.text)
    assert "Alice" in text  # the roster name, with the rep id under it
    # A team's targets are each rep's defaults: the tile shows the team's sum (3 reps x 20).
    assert "target 60" in text
    # Connects (4) count carol's inbound call; connect rate counts outbound connects per dial
    # (3 of 5): both captions name the 3 outbound connects, so the tiles visibly agree.
    assert board.tiles["connects"] == "4"
    assert "3 outbound + 1 inbound" in text
    assert "3 outbound of 5 dials" in text
    assert "incl. 1 in" in text  # carol's row: 1 connect, all inbound
    assert board.conn == "live", "the page should be on the live stream"
    assert "key=" not in html.split("<body", 1)[0]  # nothing echoes the key

    chinese = Board()
    chinese.feed(zh)
    assert "外呼量" in " ".join(chinese.text)
    assert "外呼 3 + 呼入 1" in " ".join(chinese.text)
    assert chinese.tiles["dials"] == str(dials)

    shot = tmp_path / "wallboard.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered board, not a blank page
    keep = os.environ.get("CALLPULSE_WALLBOARD_SCREENSHOT")
    if keep:  # e.g. CI artifacts: copy the screenshot out of tmp_path
        shutil.copy(shot, keep)
