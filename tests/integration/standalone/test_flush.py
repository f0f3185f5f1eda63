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


def test_a_stop_right_after_a_batch_woke_the_flush_task_returns(tmp_path: Path) -> None:
    """Python 3.11's `asyncio.wait_for` returns the awaited result instead of raising when the
    cancel arrives as the awaited event fires: the flush task woken by a batch went on running,
    and `stop()` waited for it forever (a make test run hung in `test_checkpoint.py`). Every
    timer task is over when `stop()` returns."""
    asyncio.run(_stop_after_wakes(tmp_path))


async def _stop_after_wakes(tmp_path: Path) -> None:
    cadence = Cadence(
        snapshot_interval=HOUR, rolling_refresh=HOUR, alert_evaluation=HOUR, stale_sweep=HOUR
    )
    for steps in range(6):  # each spacing of the wake and the cancel the loop can make
        core = Aggregator.build(
            MemoryStore(),
            MemoryStore(),
            rules=Rules(),
            roster=RosterView(default_timezone="UTC"),
            metrics=Metrics(),
            cadence=cadence,
        )

        async def no_history(records: object) -> None:
            return None

        engine = EmbeddedEngine(
            SqliteEventLog(tmp_path / f"log-{steps}.db"),
            core,
            cadence,
            on_snapshot=lambda snap: None,
            on_records=no_history,
            checkpoint_seconds=HOUR,
        )
        await engine.log.open()
        await engine.start()
        engine._changed.set()  # noqa: SLF001 - what an accepted batch does
        for _ in range(steps):
            await asyncio.sleep(0)
        try:
            async with asyncio.timeout(10) as deadline:  # the old code never returned by itself
                await engine.stop()
        finally:
            await engine.log.close()
        assert not deadline.expired(), f"stop() hung ({steps} steps between wake and cancel)"
        assert asyncio.all_tasks() == {asyncio.current_task()}
