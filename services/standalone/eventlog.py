"""The embedded durable event log: SQLite in WAL mode, committed before an event is acknowledged."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiosqlite

from schemas.events import CallEvent, event_from_json, event_to_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE (call_id, event_id)
)
"""


class SqliteEventLog:
    """Append-only log of accepted events; a retried event (same call and event id) is kept once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        """Open (creating) the log; FULL sync so a commit survives a power cut, not only a kill."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute(SCHEMA)
        await self._db.commit()

    async def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection."""
        if self._db is None:
            raise RuntimeError("event log is not open")
        return self._db

    async def append(self, events: Sequence[CallEvent]) -> int:
        """Commit a batch atomically; returns how many were new."""
        now = time.time()
        rows = [(e.call_id, e.event_id, event_to_json(e), now) for e in events]
        before = self.db.total_changes
        # ON CONFLICT DO NOTHING skips only a retried event; `INSERT OR IGNORE` would also
        # silently skip a row that breaks any other constraint, losing an acknowledged event.
        await self.db.executemany(
            "INSERT INTO events (call_id, event_id, body, received_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (call_id, event_id) DO NOTHING",
            rows,
        )
        await self.db.commit()
        return self.db.total_changes - before

    async def replay(self, batch: int = 5000) -> AsyncIterator[CallEvent]:
        """Every logged event in arrival order."""
        last = 0
        while True:
            async with self.db.execute(
                "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch)
            ) as cursor:
                rows = list(await cursor.fetchall())
            if not rows:
                return
            for seq, body in rows:
                last = seq
                yield event_from_json(body)

    async def count(self) -> int:
        """Number of logged events."""
        async with self.db.execute("SELECT count(*) FROM events") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
