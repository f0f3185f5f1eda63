"""The embedded engine publishes the snapshots of an accepted batch right after applying it, as
the Faust worker does after each stage-2 batch, not at its next snapshot tick."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.events import parse_event
from schemas.kpis import RepSnapshot
from services.aggregator.core import Aggregator, Cadence, MemoryStore
from services.aggregator.domain.calls import Rules
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.standalone.engine import EmbeddedEngine
from services.standalone.eventlog import SqliteEventLog

HOUR = 3600.0


def test_an_accepted_batch_is_published_without_waiting_for_the_snapshot_tick(
    tmp_path: Path,
) -> None:
    asyncio.run(_check(tmp_path / "log.db"))


async def _check(path: Path) -> None:
    cadence = Cadence(
        snapshot_interval=HOUR, rolling_refresh=HOUR, alert_evaluation=HOUR, stale_sweep=HOUR
    )
    core = Aggregator.build(
        MemoryStore(),
        MemoryStore(),
        rules=Rules(),
        roster=RosterView(default_timezone="UTC"),
        metrics=Metrics(),
        cadence=cadence,
    )
    seen: dict[str, RepSnapshot] = {}

    async def no_history(records: object) -> None:
        return None

    engine = EmbeddedEngine(
        SqliteEventLog(path),
        core,
        cadence,
        on_snapshot=lambda snap: seen.__setitem__(snap.rep_id, snap),
        on_records=no_history,
        checkpoint_seconds=HOUR,
    )
    await engine.log.open()
    await engine.start()
    try:
        now = datetime.now(UTC)
        for n in range(2):
            event = parse_event(
                {
                    "type": "call.started",
                    "event_id": f"e{n}",
                    "call_id": f"call-{n}",
                    "rep_id": "rep-a",
                    "occurred_at": now - timedelta(seconds=30),
                }
            )
            await engine.publish([event])
            for _ in range(100):  # at most 5 s; the timers wait an hour
                if "rep-a" in seen and seen["rep-a"].windows["today"].dials == n + 1:
                    break
                await asyncio.sleep(0.05)
            assert seen["rep-a"].windows["today"].dials == n + 1
    finally:
        await engine.stop()
        await engine.log.close()
