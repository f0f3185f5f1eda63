"""The embedded event log on a real SQLite file: durable, ordered, a retry kept once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from schemas.events import parse_event
from services.standalone.eventlog import SqliteEventLog


def _event(event_id: str, call_id: str = "c1") -> object:
    return parse_event(
        {
            "type": "call.answered",
            "event_id": event_id,
            "call_id": call_id,
            "occurred_at": datetime(2026, 3, 1, 9, tzinfo=UTC),
        }
    )


async def test_appended_events_survive_reopening_in_order_and_retries_are_kept_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path)
    await log.open()
    assert await log.append([_event("e1"), _event("e2"), _event("e1", "c2")]) == 3  # type: ignore[list-item]
    assert await log.append([_event("e2"), _event("e3")]) == 1  # type: ignore[list-item]
    await log.close()

    reopened = SqliteEventLog(path)
    await reopened.open()
    try:
        replayed = [(e.call_id, e.event_id) async for e in reopened.replay(batch=2)]
        assert replayed == [("c1", "e1"), ("c1", "e2"), ("c2", "e1"), ("c1", "e3")]
        assert await reopened.count() == 4
    finally:
        await reopened.close()
