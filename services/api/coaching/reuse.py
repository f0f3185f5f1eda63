"""Results reused while fresh, then served stale while one task recomputes them.

A polled page must not wait for a sum over weeks of history every `fresh` seconds: a result
younger than `fresh` is served as it is; one younger than twice that is served too while a
single background task recomputes it; an older one (or none) is computed in the request, once
however many requests want it at the same time. So a served result is at most 2 x `fresh` old.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Reuse(Generic[T]):
    """Keeps results by key (see the module docstring); `fresh` 0 computes every time."""

    def __init__(
        self,
        fresh: float,
        *,
        max_entries: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fresh, self.max_entries, self.clock = fresh, max_entries, clock
        self._entries: dict[Hashable, tuple[float, T]] = {}
        self._running: dict[Hashable, asyncio.Task[T]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The result for `key`: reused, served stale while refreshed, or computed now."""
        if self.fresh <= 0:
            return await compute()
        entry = self._entries.get(key)
        if entry is not None:
            age = self.clock() - entry[0]
            if age < self.fresh:
                return entry[1]
            if age < 2 * self.fresh:
                self._start(key, compute)
                return entry[1]
        return await asyncio.shield(self._start(key, compute))

    def _start(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._compute(key, compute))
            self._running[key] = task
            task.add_done_callback(self._done)
        return task

    async def _compute(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await compute()
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (self.clock(), value)
            return value
        finally:
            self._running.pop(key, None)

    @staticmethod
    def _done(task: asyncio.Task[T]) -> None:
        # A background refresh nobody awaits: its failure is logged; the stale result stays.
        if not task.cancelled() and task.exception() is not None:
            log.warning("coaching_refresh_failed", error=repr(task.exception()))
