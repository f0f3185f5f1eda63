"""A replay of a long log (no checkpoint yet) stays bounded: the stale sweep follows the log's
arrival times, so ended calls are forgotten as they were live, and records reach history as the
replay goes."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.calls import CallRecord
from schemas.events import event_to_json
from services.aggregator.core import Aggregator, Cadence, MemoryStore
from services.aggregator.domain.calls import Rules
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.simulator.floor import FloorConfig, stream
from services.standalone.engine import EmbeddedEngine
from services.standalone.eventlog import SqliteEventLog

RETENTION = 3600.0


async def test_a_replay_of_days_forgets_ended_calls_as_their_arrival_time_passes(
    tmp_path: Path,
) -> None:
    start = datetime.now(UTC) - timedelta(days=3)
    events = list(itertools.islice(stream(FloorConfig(reps=6, teams=1, shift=None), start), 3000))
    path = tmp_path / "events.db"
    log = SqliteEventLog(path)
    await log.open()
    await log.close()
    with sqlite3.connect(path) as db:  # logged as if received when they happened
        db.executemany(
            "INSERT INTO events (call_id, event_id, body, received_at) VALUES (?, ?, ?, ?)",
            [(e.call_id, e.event_id, event_to_json(e), e.occurred_at.timestamp()) for e in events],
        )
    stored: dict[str, CallRecord] = {}

    async def history(records: list[CallRecord]) -> None:
        stored.update({r.call_id: r for r in records})

    core = Aggregator.build(
        MemoryStore(),
        MemoryStore(),
        rules=Rules(call_retention_seconds=RETENTION),
        roster=RosterView(),
        metrics=Metrics(),
    )
    engine = EmbeddedEngine(SqliteEventLog(path), core, Cadence(), lambda snap: None, history)
    await engine.log.open()
    await engine.start()
    await engine.stop()
    await engine.log.close()
    calls = {e.call_id for e in events}
    last = events[-1].occurred_at
    recent = {e.call_id for e in events if e.occurred_at > last - timedelta(hours=2)}
    kept = {key.decode(): json.loads(value) for key, value in core.calls.store.data.items()}
    held = {call_id for call_id, state in kept.items() if not state["forgotten"]}
    first = min(e.occurred_at for e in events)
    assert last - first > timedelta(seconds=5 * RETENTION)  # the log spans many retentions
    assert len(recent) < len(calls)
    assert held <= recent  # what is held was active within the retention (plus a sweep)
    # a forgotten call keeps only its event ids and times (for the forgotten retention)
    assert all("rep_id" not in state for state in kept.values() if state["forgotten"])
    assert set(stored) == calls  # every call reached history
