"""Embedded mode end to end: a rep behind pace raises a pace alert that the API lists, stored in
history, with both languages — configured through the API as a supervisor would."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.scenario import (
    ADMIN_KEY,
    SECRET,
    free_port,
    midday_timezone,
    process,
    signed,
    wait_http,
)

pytestmark = pytest.mark.timeout(120)


def test_pace_alert_reaches_the_alerts_api_in_embedded_mode(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    tz = midday_timezone(now)  # 12:xx local: the 08:00-16:00 shift is half gone
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_TIMEZONE": tz,
    }
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    with process(args, env, tmp_path / "run.log") as server:
        wait_http(f"{url}/readyz", proc=server)
        with httpx.Client(base_url=url, headers=admin, timeout=10) as api:
            shift = {"days": [1, 2, 3, 4, 5, 6, 7], "start": "08:00", "end": "16:00"}
            for path, body in (
                ("/v1/teams/t1", {"name": "Team 1", "timezone": tz, "shift": shift}),
                ("/v1/reps/r1", {"name": "Rui", "team_id": "t1"}),
                ("/v1/teams/t1/targets", {"targets": [{"kpi": "dials", "value": 100}]}),
                (
                    "/v1/teams/t1/alert-rules",
                    {"rules": [{"rule_id": "pace", "kind": "pace", "kpi": "dials"}]},
                ),
            ):
                response = api.put(path, json=body)
                assert response.status_code < 300, (path, response.text)
            events = [
                {
                    "event_id": f"e{i}",
                    "type": "call.started",
                    "call_id": f"c{i}",
                    "rep_id": "r1",
                    "occurred_at": (now - timedelta(minutes=3)).isoformat(),
                }
                for i in range(3)
            ]
            body = json.dumps(events).encode()
            assert api.post("/v1/events", content=body, headers=signed(body)).status_code == 202
            deadline = time.monotonic() + 60
            alerts: list[dict[str, object]] = []
            while time.monotonic() < deadline and not alerts:
                response = api.get("/v1/alerts", params={"state": "firing"})
                assert response.status_code == 200, response.text
                alerts = response.json()["alerts"]
                time.sleep(0.5)
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert (alert["kind"], alert["rep_id"], alert["team_id"]) == ("pace", "r1", "t1")
    assert "Rui is behind pace on dials" in str(alert["message_en"])
    assert "进度落后" in str(alert["message_zh"])
