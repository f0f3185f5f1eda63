"""Fail-stop and dead letters on a real worker (issue "Exact under faults", deliverable 2).

- A batch whose processing raises, in stage 1 or in stage 2, stops the worker hard (exit 70)
  without committing; restarted, it reads the batch again and every rep's KPIs equal the
  reference fold exactly (Faust alone would have acked the batch and committed past it).
- Poison (a record that is not a valid event, a facts pack that does not decode) goes to the
  dead-letter topic with the reason, counted on a metric; the worker goes on.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import event_to_json
from services.aggregator.domain.reference import fold
from tests.e2e.scenario import midday_timezone
from tests.integration.aggregator.support import Deployment
from tests.integration.aggregator.test_workers import _equal, _latest, floor_log

pytestmark = pytest.mark.timeout(300)


def _mismatch(deployment: Deployment, want: dict[str, Any]) -> dict[Any, Any]:
    got = _latest(deployment)
    return {
        (rep, window): (got.get(rep, {}).get(window), values)
        for rep, windows in want.items()
        for window, values in windows.items()
        if window in ("today", "week", "month") and not _equal(got.get(rep, {}).get(window), values)
    }


def test_a_batch_that_raises_stops_the_worker_and_is_processed_again_after_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    deployment = Deployment(kafka_bootstrap, tmp_path, tz)
    events = floor_log(seed=5, now=now, reps=20, calls=300)
    items = [(e.call_id.encode(), event_to_json(e)) for e in events]
    stage1, stage2 = tmp_path / "stage1-raised", tmp_path / "stage2-raised"
    # stage 1 raises on the batch holding call c40's events, stage 2 on the pack with c200's
    deployment.env["CALLPULSE_TEST_RAISE_ONCE_STAGE1"] = f'"c40":{stage1}'
    deployment.env["CALLPULSE_TEST_RAISE_ONCE_STAGE2"] = f'"c200":{stage2}'
    want = fold(events, datetime.now(UTC), default_timezone=tz)
    exits: list[int | None] = []
    deadline = time.monotonic() + 200
    mismatch: dict[Any, Any] = {"not started": None}
    while mismatch and time.monotonic() < deadline and len(exits) < 4:
        with deployment.worker("w") as proc:
            if not exits:
                deployment.produce("events", items)
            while proc.poll() is None and time.monotonic() < deadline:
                mismatch = _mismatch(deployment, want)
                if not mismatch:
                    break
                time.sleep(2)
            exits.append(proc.poll())
    assert stage1.exists(), "the stage 1 fault never fired"
    assert stage2.exists(), "the stage 2 fault never fired"
    assert exits.count(70) == 2, exits  # each fault stopped the worker hard, once
    example = next(iter(mismatch.items()), None)
    assert not mismatch, f"{len(mismatch)} rep-windows differ, e.g. {example}"
    fail_stops = json.loads((tmp_path / "w" / "fail-stops.json").read_text())
    assert fail_stops["count"] == 2


def test_poison_goes_to_dead_letters_and_the_worker_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    deployment = Deployment(kafka_bootstrap, tmp_path, tz)
    events = floor_log(seed=9, now=now, reps=10, calls=100)
    items = [(e.call_id.encode(), event_to_json(e)) for e in events]
    want = fold(events, datetime.now(UTC), default_timezone=tz)
    with deployment.worker("w") as proc:
        deployment.produce("events", [(b"x1", b"{not json"), (b"x2", b'{"type": "call.started"}')])
        deployment.produce("facts", [(b"r1", b"\x00garbage")])
        deployment.produce("events", items)
        deadline = time.monotonic() + 120
        while (mismatch := _mismatch(deployment, want)) and time.monotonic() < deadline:
            time.sleep(2)
        assert not mismatch
        assert proc.poll() is None  # poison does not stop the worker
        metrics = httpx.get(f"{deployment.web}/metrics").text
    letters = [json.loads(value) for _, value in deployment.read("dead_letters") if value]
    assert sorted(letter["topic"] for letter in letters) == sorted(
        [deployment.topic["events"]] * 2 + [deployment.topic["facts"]]
    )
    reasons = " | ".join(letter["reason"] for letter in letters)
    assert "invalid event" in reasons
    assert "invalid facts pack" in reasons
    assert {letter["value"] for letter in letters} >= {"{not json", '{"type": "call.started"}'}
    assert (
        f'callpulse_aggregator_dead_letters_total{{source="{deployment.topic["events"]}"}} 2.0'
        in metrics
    )
