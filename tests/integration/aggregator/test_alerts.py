"""A rep falls behind pace during the shift, then catches up: exactly one firing and one
resolved alert reach the alerts topic, although the worker is restarted in between."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import event_to_json, parse_event
from schemas.roster import AlertRule, AlertRules, Rep, RosterRecord, Shift, Target, Targets, Team
from tests.e2e.scenario import midday_timezone
from tests.integration.aggregator.support import Deployment

pytestmark = pytest.mark.timeout(240)


def _dials(first: int, count: int, now: datetime) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(first, first + count):
        event = parse_event(
            {
                "type": "call.started",
                "event_id": f"d{i}",
                "call_id": f"call-{i}",
                "rep_id": "rep-a",
                "occurred_at": now - timedelta(minutes=5),
            }
        )
        out.append((event.call_id.encode(), event_to_json(event)))
    return out


def _alerts(deployment: Deployment) -> list[dict[str, Any]]:
    return [json.loads(v) for _, v in deployment.read("alerts") if v is not None]


def _wait(deployment: Deployment, states: list[str], seconds: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = _alerts(deployment)
        if [a["state"] for a in seen] == states:
            return seen
        time.sleep(1)
    return seen


def test_behind_pace_then_back_gives_one_firing_and_one_resolved_across_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    tz = midday_timezone(now)  # local time is 12:xx: the 08:00-16:00 shift is half gone
    deployment = Deployment(kafka_bootstrap, tmp_path, tz)
    shift = Shift(days=[1, 2, 3, 4, 5, 6, 7], start=clock(8), end=clock(16))
    roster = [
        RosterRecord(team=Team(team_id="team-a", timezone=tz, shift=shift)),
        RosterRecord(rep=Rep(rep_id="rep-a", team_id="team-a", name="Ann")),
        RosterRecord(
            targets=Targets(
                subject="team", subject_id="team-a", targets=[Target(kpi="dials", value=100)]
            )
        ),
        RosterRecord(
            alert_rules=AlertRules(
                subject="team",
                subject_id="team-a",
                rules=[
                    AlertRule(
                        rule_id="pace-dials",
                        kind="pace",
                        kpi="dials",
                        tolerance=0.2,
                        cooldown_minutes=0,
                    )
                ],
            )
        ),
    ]
    deployment.produce("roster", [(r.key().encode(), r.model_dump_json().encode()) for r in roster])

    with deployment.worker("first"):
        time.sleep(3)  # the roster is read by every worker at start
        deployment.produce("events", _dials(0, 5, now))  # 5 of an expected 50+: behind
        fired = _wait(deployment, ["firing"])
        assert [a["state"] for a in fired] == ["firing"], fired
        scrape = httpx.get(f"{deployment.web}/metrics", timeout=5)
        assert scrape.status_code == 200, scrape.text
        assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'callpulse_aggregator_alerts_total{kind="pace",state="firing"} 1.0' in scrape.text
    # the first worker is stopped (SIGTERM); the second restores the rep from the changelog
    with deployment.worker("second"):
        time.sleep(5)  # several evaluations of the still-behind rep: none may notify again
        assert [a["state"] for a in _alerts(deployment)] == ["firing"]
        deployment.produce("events", _dials(5, 70, now))  # 75: back on pace
        both = _wait(deployment, ["firing", "resolved"])
        time.sleep(5)
        final = _alerts(deployment)
    assert [a["state"] for a in final] == ["firing", "resolved"], final
    assert both[0]["alert_id"] == both[1]["alert_id"]
    assert both[0]["kind"] == "pace"
    assert both[0]["rep_id"] == "rep-a"
    assert "Ann is behind pace on dials" in both[0]["message_en"]
    assert "进度落后" in both[0]["message_zh"]
