"""Two Faust workers on a multi-partition topic; one is SIGKILLed mid-stream and restarted.

The final snapshot of every rep on the compacted kpis topic must equal the reference fold of
the de-duplicated log exactly, for every calendar window."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.events import CallEvent, event_to_json, parse_event
from services.aggregator.domain.reference import fold
from tests.e2e.scenario import midday_timezone
from tests.integration.aggregator.support import Deployment

pytestmark = pytest.mark.timeout(300)


def floor_log(seed: int, now: datetime, reps: int = 40, calls: int = 600) -> list[CallEvent]:
    """A seeded floor's events over the last 50 minutes (every lifecycle shape)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(calls):
        rep = f"r{rng.randrange(reps)}"
        call = f"c{i}"
        start = now - timedelta(seconds=rng.randrange(60, 50 * 60))
        inbound = rng.random() < 0.15
        base = {"call_id": call}
        out.append(
            {
                **base,
                "type": "call.started",
                "occurred_at": start,
                "direction": "inbound" if inbound else "outbound",
                **({} if inbound else {"rep_id": rep}),
            }
        )
        if rng.random() < 0.6:
            answered = start + timedelta(seconds=rng.randrange(3, 30))
            out.append({**base, "type": "call.answered", "occurred_at": answered, "rep_id": rep})
            end = answered + timedelta(seconds=rng.choice([20, 150, 299, 300, 420]))
            out.append(
                {
                    **base,
                    "type": "call.ended",
                    "occurred_at": end,
                    "rep_id": rep,
                    "end_status": "completed",
                }
            )
            if rng.random() < 0.3:
                out.append(
                    {
                        **base,
                        "type": "call.outcome",
                        "rep_id": rep,
                        "outcome": "sale",
                        "occurred_at": end + timedelta(seconds=20),
                        "amount": f"{rng.randrange(10, 900)}.{rng.randrange(100):02d}",
                    }
                )
                if rng.random() < 0.2:
                    out.append(
                        {
                            **base,
                            "type": "call.outcome",
                            "rep_id": rep,
                            "outcome": "not_interested",
                            "occurred_at": end + timedelta(seconds=40),
                        }
                    )
            if rng.random() < 0.2:
                out.append(
                    {
                        **base,
                        "type": "survey.completed",
                        "rep_id": rep,
                        "csat": rng.randrange(1, 6),
                        "occurred_at": end + timedelta(seconds=50),
                    }
                )
        else:
            out.append(
                {
                    **base,
                    "type": "call.ended",
                    "rep_id": rep,
                    "end_status": "no_answer",
                    "occurred_at": start + timedelta(seconds=25),
                    "direction": "inbound" if inbound else "outbound",
                }
            )
    return [parse_event({**e, "event_id": f"{e['call_id']}-{n}"}) for n, e in enumerate(out)]


def test_two_workers_with_a_sigkill_in_the_middle_give_the_reference_kpis(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    deployment = Deployment(kafka_bootstrap, tmp_path, tz)
    events = floor_log(seed=7, now=now)
    rng = random.Random(11)
    stream = events + rng.sample(events, len(events) // 5)  # 20 % duplicates
    rng.shuffle(stream)
    items = [(e.call_id.encode(), event_to_json(e)) for e in stream]
    third = len(items) // 3

    with deployment.worker("a"), deployment.worker("b") as b:
        deployment.produce("events", items[:third])
        time.sleep(3)
        b.kill()  # SIGKILL mid-stream: its partitions move to worker a
        deployment.produce("events", items[third : 2 * third])
        with deployment.worker("c"):
            deployment.produce("events", items[2 * third :])
            want = fold(events, datetime.now(UTC), default_timezone=tz)
            assert_converges(deployment, want, seconds=180)


def _latest(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """rep -> window -> KPIs of the last snapshot per rep on the compacted topic."""
    latest: dict[str, dict[str, Any]] = {}
    for key, value in deployment.read("kpis"):
        if key is not None and value is not None:
            latest[key.decode()] = json.loads(value)["windows"]
    return latest


def assert_converges(deployment: Deployment, want: dict[str, Any], *, seconds: float) -> None:
    """Within `seconds`, every rep's today, week and month on the kpis topic equal `want`."""
    deadline = time.monotonic() + seconds
    mismatch: dict[Any, Any] = {}
    while time.monotonic() < deadline:
        got = _latest(deployment)
        mismatch = {
            (rep, window): (got.get(rep, {}).get(window), values)
            for rep, windows in want.items()
            for window, values in windows.items()
            if window in ("today", "week", "month")
            and not _equal(got.get(rep, {}).get(window), values)
        }
        if not mismatch:
            return
        time.sleep(2)
    example = next(iter(mismatch.items()), None)
    assert not mismatch, f"{len(mismatch)} rep-windows differ, e.g. {example}"


def _equal(got: dict[str, Any] | None, want: dict[str, Any]) -> bool:
    return got is not None and all(got.get(k) == v for k, v in want.items())
