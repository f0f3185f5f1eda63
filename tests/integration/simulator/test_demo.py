"""The live demo: back-fills at once, streams until stopped, and its truth matches what arrived."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from services.simulator.demo import BACKFILL, run_demo
from services.simulator.truth import ground_truth, read_truth
from tests.integration.simulator.conftest import SECRET, ServerFactory
from tests.integration.simulator.fakefloor import ADMIN_KEY, FakeFloor


async def test_the_demo_streams_until_stopped(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    floor = FakeFloor(secret=SECRET)
    url = server_factory(floor)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.5, stop.set)
    began = datetime.now(UTC)
    report = await run_demo(
        url, SECRET, reps=20, stop=stop, api_key=ADMIN_KEY, truth_out=tmp_path / "truth.json"
    )
    received = floor.event_ids()
    assert not report.failures
    assert sorted(received) == sorted(report.accepted_ids)
    assert len(floor.timezones) == 20  # the demo registered its reps
    with floor.lock:
        events = list(floor.events)
    assert min(e.occurred_at for e in events) < began - BACKFILL / 2  # back-filled history
    truth = read_truth(tmp_path / "truth.json")
    expected = ground_truth(events, datetime.now(UTC), floor.timezones)
    assert {rep: w["today"] for rep, w in truth.items()} == {
        rep: w["today"] for rep, w in expected.items()
    }
