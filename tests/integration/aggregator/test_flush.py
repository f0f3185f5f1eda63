"""Stage 2 publishes the snapshots of the reps a batch changed right after the batch, without
waiting for the snapshot timer (end-to-end latency, issue 11)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.events import event_to_json, parse_event
from tests.e2e.scenario import wait_http
from tests.integration.aggregator.support import Deployment

pytestmark = pytest.mark.timeout(180)


def _dial(i: int, rep: str, now: datetime) -> tuple[bytes, bytes]:
    event = parse_event(
        {
            "type": "call.started",
            "event_id": f"e{i}",
            "call_id": f"call-{i}",
            "rep_id": rep,
            "occurred_at": now - timedelta(seconds=30),
        }
    )
    return event.call_id.encode(), event_to_json(event)


def _today_dials(deployment: Deployment) -> dict[str, Any]:
    """rep -> dials today in its newest snapshot on the kpis topic."""
    out: dict[str, Any] = {}
    for key, value in deployment.read("kpis"):
        if key is not None and value is not None:
            snap = json.loads(value)
            out[key.decode()] = snap["windows"]["today"]["dials"]
    return out


def test_snapshots_go_out_after_each_stage2_batch_not_at_the_timer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, tmp_path, "UTC")
    # no timer publishes within this test: the snapshot timer, the rolling refresh (which
    # publishes every rep once after a start) and the alert tick wait an hour
    deployment.env |= {
        "CALLPULSE_SNAPSHOT_INTERVAL_SECONDS": "3600",
        "CALLPULSE_ROLLING_REFRESH_SECONDS": "3600",
        "CALLPULSE_ALERT_EVALUATION_SECONDS": "3600",
    }
    now = datetime.now(UTC)
    with deployment.worker("only") as proc:
        # events read before the worker settles wait for a timer (at start, the refresh)
        wait_http(f"{deployment.web}/readyz", proc=proc)
        deployment.produce("events", [_dial(i, f"rep-{i % 3}", now) for i in range(6)])
        deadline, seen = time.monotonic() + 60, {}
        while time.monotonic() < deadline and seen != {"rep-0": 2, "rep-1": 2, "rep-2": 2}:
            time.sleep(0.5)
            seen = _today_dials(deployment)
        deployment.produce("events", [_dial(6, "rep-0", now)])
        while time.monotonic() < deadline and seen.get("rep-0") != 3:
            time.sleep(0.5)
            seen = _today_dials(deployment)
    assert seen == {"rep-0": 3, "rep-1": 2, "rep-2": 2}
