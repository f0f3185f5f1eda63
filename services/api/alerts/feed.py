"""The alert feed of one replica: stored transitions, in `seq` order, to its SSE subscribers.

Transitions reach the database through whichever replica consumed them; every replica's feed
reads what is new since its cursor (right after its own writes, and every poll interval for
the others'), and fans it out with its seq, the SSE event id a client resumes from.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.db import repository
from services.api.readmodel import ReadModel

log = structlog.get_logger(__name__)

PAGE = 500


class AlertFeed:
    """Publishes stored alert transitions to the read model's subscribers, each once, in order."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        readmodel: ReadModel,
        poll_seconds: float = 1.0,
    ) -> None:
        self.sessions, self.readmodel, self.poll_seconds = sessions, readmodel, poll_seconds
        self.cursor: int | None = None
        """The seq of the last transition fanned out; None until started."""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start at the latest stored transition (history is not re-sent) and poll."""
        async with self.sessions() as session:
            self.cursor = await repository.max_alert_seq(session)
        self._task = asyncio.create_task(self._run(), name="alert-feed")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def pump(self) -> int:
        """Fan out every transition stored after the cursor; returns how many."""
        if self.cursor is None:
            return 0
        published = 0
        async with self._lock:
            while True:
                async with self.sessions() as session:
                    rows = await repository.alerts_since(session, self.cursor, limit=PAGE)
                for row in rows:
                    self.readmodel.publish_alert(repository.alert_of(row), seq=row.seq)
                    self.cursor = row.seq
                published += len(rows)
                if len(rows) < PAGE:
                    return published

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.pump()
            except Exception as exc:  # the database may be briefly away: poll again
                log.warning("alert_feed_failed", error=repr(exc))
