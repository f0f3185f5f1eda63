"""The embedded event log on a real SQLite file: durable, ordered, a retry kept once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from schemas.events import CallEvent, parse_event
from services.standalone.eventlog import SqliteEventLog


def _event(event_id: str, call_id: str = "c1") -> CallEvent:
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
    try:
        # (new events, the newest seq): AUTOINCREMENT spends a seq on the skipped retry of e2
        appended = await log.append([_event("e1"), _event("e2"), _event("e1", "c2")])
        assert (appended.new, appended.seq) == (3, 3)
        assert (await log.append([_event("e2"), _event("e3")]))[:2] == (1, 5)
        assert (await log.append([_event("e3")]))[:2] == (0, 5)
    finally:
        await log.close()  # an open aiosqlite connection's thread would keep pytest alive

    reopened = SqliteEventLog(path)
    await reopened.open()
    try:
        replayed = [(s, e.call_id, e.event_id) async for s, e, _ in reopened.replay(batch=2)]
        assert replayed == [(1, "c1", "e1"), (2, "c1", "e2"), (3, "c2", "e1"), (5, "c1", "e3")]
        assert [seq async for seq, _, _ in reopened.replay(after=2, batch=1)] == [3, 5]
        assert await reopened.count() == 4
    finally:
        await reopened.close()
