"""The embedded durable event log, and checkpoints of the core's state, in one SQLite file (WAL).

An event is committed here before it is acknowledged. A checkpoint is the core's keys changed
since the previous one plus the log seq of the last event they reflect, written in ONE
transaction; a start loads it and replays only the events after that seq. Both live in the same
file on purpose: a transaction over ATTACHed files is atomic per file only, not as a set, in WAL
mode; one connection serializes the log's and the state's writes, and one file holds everything
a restart needs (one file to back up or move).

One writer: the embedded engine, under its lock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import aiosqlite

from schemas.events import CallEvent, event_from_json, event_to_json

# AUTOINCREMENT: a seq is never reused, even after the retention deleted the newest events, so
# "after the checkpoint's seq" always means "appended after the checkpoint".
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE (call_id, event_id)
);
CREATE TABLE IF NOT EXISTS state (
    store TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    rules TEXT NOT NULL,
    taken_at REAL NOT NULL
);
"""

Changes = Mapping[str, Mapping[bytes, bytes | None]]
"""store name -> key -> value (None: deleted)."""


class Appended(NamedTuple):
    """What an append wrote."""

    new: int
    """Events that were not in the log yet (a retried event is kept once)."""
    seq: int
    """The newest event's seq after the append: the highest this batch wrote, if it wrote any
    (one writer)."""
    received_at: float
    """When the batch was received (epoch s): the arrival time its new events replay with."""


@dataclass(slots=True)
class Checkpoint:
    """The stored state and the seq of the last event it reflects."""

    seq: int
    rules: str
    """The KPI rules the state was computed with (a start with other rules discards it)."""
    state: list[tuple[str, bytes, bytes]] = field(default_factory=list)


class SqliteEventLog:
    """Append-only log of accepted events (a retried event, same call and event id, is kept
    once), the checkpointed state, and the retention that deletes what a checkpoint covers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        """Open (creating) the log; FULL sync so a commit survives a power cut, not only a kill."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.executescript(SCHEMA)
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

    async def append(self, events: Sequence[CallEvent]) -> Appended:
        """Commit a batch atomically; how many were new and the log's last seq."""
        now = time.time()
        rows = [(e.call_id, e.event_id, event_to_json(e), now) for e in events]
        before = self.db.total_changes
        try:
            # ON CONFLICT DO NOTHING skips only a retried event; `INSERT OR IGNORE` would also
            # silently skip a row that breaks any other constraint, losing an acknowledged event.
            await self.db.executemany(
                "INSERT INTO events (call_id, event_id, body, received_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (call_id, event_id) DO NOTHING",
                rows,
            )
            new = self.db.total_changes - before
            seq = await self._last_seq()
            await self.db.commit()
        except BaseException:
            # else the next batch's commit would commit these rows, never applied by the engine
            await self.db.rollback()
            raise
        return Appended(new, seq, now)

    async def replay(
        self, after: int = 0, batch: int = 5000
    ) -> AsyncIterator[tuple[int, CallEvent, float]]:
        """(seq, event, when it was received, epoch s) of every logged event after `after`."""
        last = after
        sql = "SELECT seq, body, received_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
        while True:
            async with self.db.execute(sql, (last, batch)) as cursor:
                rows = list(await cursor.fetchall())
            if not rows:
                return
            for seq, body, received_at in rows:
                last = seq
                yield seq, event_from_json(body), float(received_at)

    async def count(self) -> int:
        """Number of logged events."""
        async with self.db.execute("SELECT count(*) FROM events") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # -- checkpoints ----------------------------------------------------------------------------

    async def load_checkpoint(self) -> Checkpoint | None:
        """The last checkpoint with its state, or None when none was written."""
        async with self.db.execute("SELECT seq, rules FROM checkpoint WHERE id = 1") as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        async with self.db.execute("SELECT store, key, value FROM state") as cursor:
            state = [(str(s), bytes(k), bytes(v)) for s, k, v in await cursor.fetchall()]
        return Checkpoint(seq=int(row[0]), rules=str(row[1]), state=state)

    async def save_checkpoint(
        self, seq: int, changes: Changes, rules: str, *, replace: bool = False
    ) -> None:
        """Write changed keys (None deletes) and the seq they reflect in one transaction.

        `replace`: `changes` is the whole state; every other stored key is deleted."""
        upserts = [(s, k, v) for s, keys in changes.items() for k, v in keys.items() if v]
        deletes = [(s, k) for s, keys in changes.items() for k, v in keys.items() if v is None]
        try:
            if replace:
                await self.db.execute("DELETE FROM state")
            await self.db.executemany(
                "INSERT INTO state (store, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                upserts,
            )
            await self.db.executemany("DELETE FROM state WHERE store = ? AND key = ?", deletes)
            await self.db.execute(
                "INSERT INTO checkpoint (id, seq, rules, taken_at) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, rules = excluded.rules, "
                "taken_at = excluded.taken_at",
                (seq, rules, time.time()),
            )
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise

    async def trim(self, received_before: float, chunk: int = 2000) -> int:
        """Delete up to `chunk` of the oldest events that a checkpoint covers and that were
        received before `received_before` (epoch seconds); returns how many.

        Stops at the first event that does not qualify: seq follows arrival, and an event kept
        because the clock stepped back is deleted by a later run."""
        async with self.db.execute(
            "SELECT seq, received_at FROM events "
            "WHERE seq <= (SELECT coalesce(max(seq), 0) FROM checkpoint) ORDER BY seq LIMIT ?",
            (chunk,),
        ) as cursor:
            rows = list(await cursor.fetchall())
        last = None
        for seq, received_at in rows:
            if received_at >= received_before:
                break
            last = seq
        if last is None:
            return 0
        before = self.db.total_changes
        try:
            await self.db.execute("DELETE FROM events WHERE seq <= ?", (last,))
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return self.db.total_changes - before

    async def _last_seq(self) -> int:
        """The newest event's seq (cursor.lastrowid is not set by executemany). Seqs have gaps:
        AUTOINCREMENT spends one on a skipped retry too."""
        async with self.db.execute("SELECT coalesce(max(seq), 0) FROM events") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
