"""The wallboard opened with a key scoped to one team, in headless Chromium against
`callpulse run`: with no `team` in the URL it shows that team (the only one the key's team list
and leaderboard hold), live, and nothing of the other team on the floor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.e2e.scenario import (
    ADMIN_KEY,
    SECRET,
    free_port,
    midday_timezone,
    post_batches,
    process,
    wait_http,
)
from tests.e2e.test_wallboard import Board, browse, chromium, floor_events, wait_team

pytestmark = pytest.mark.timeout(240)


def test_a_team_key_wallboard_shows_its_team(tmp_path: Path) -> None:
    browser = chromium()
    run = f"tk{uuid.uuid4().hex[:8]}"
    mine, theirs = f"{run}-a", f"{run}-b"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    now = datetime.now(UTC)
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": midday_timezone(now),
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
    }
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    ours, dials = floor_events(f"{run}a", mine, now)
    other, other_dials = floor_events(f"{run}b", theirs, now)

    with process(args, env, tmp_path / "server.log") as server:
        wait_http(f"{url}/readyz", proc=server)
        post_batches(url, ours + other)
        wait_team(url, mine, dials, reps=3)
        wait_team(url, theirs, other_dials, reps=3)
        with httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
        ) as admin:
            made = admin.post(f"/v1/teams/{mine}/keys", json={"name": "floor-a tv"})
            assert made.status_code == 201, made.text
        key = made.json()["key"]
        query = urlencode({"key": key, "sort": "dials"})
        html = browse(browser, f"{url}/?{query}", tmp_path / "profile", "--dump-dom")

    board = Board()
    board.feed(html)
    assert set(board.rows) == {f"{run}a-{name}" for name in ("alice", "bob", "carol")}, (
        sorted(board.rows),
        html[-3000:],
    )
    assert board.tiles["dials"] == str(dials)
    assert board.conn == "live", "the page should be on the live stream"
    assert theirs not in html
    assert f"{run}b-" not in html
