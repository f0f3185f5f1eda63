"""One SSE stream from two queues: the read model's updates and the competitions' standings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from schemas.competitions import Standings
from services.api.competitions.service import CompetitionSubscription
from services.api.readmodel import Subscription, Update


async def merged(
    updates: Subscription, boards: CompetitionSubscription
) -> AsyncIterator[Update | Standings]:
    """Items of both, as they come, until either subscription is dropped (None)."""
    tasks: dict[asyncio.Future[Any], str] = {
        asyncio.ensure_future(updates.get()): "updates",
        asyncio.ensure_future(boards.queue.get()): "boards",
    }
    try:
        while True:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                source = tasks.pop(task)
                item = task.result()
                if item is None:
                    return
                yield item
                again = updates.get() if source == "updates" else boards.queue.get()
                tasks[asyncio.ensure_future(again)] = source
    finally:
        for task in tasks:
            task.cancel()
