"""Reuse: fresh results are reused, stale ones served while one task refreshes them, old ones
recomputed in the request, and concurrent first requests compute once."""

from __future__ import annotations

import asyncio

from services.api.coaching.reuse import Reuse


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_fresh_stale_and_old_results() -> None:
    clock, calls = Clock(), []

    async def compute() -> int:
        calls.append(clock.now)
        return len(calls)

    reuse: Reuse[int] = Reuse(30, clock=clock)
    assert await reuse.get("k", compute) == 1
    clock.now = 29
    assert await reuse.get("k", compute) == 1  # fresh: reused
    clock.now = 45
    assert await reuse.get("k", compute) == 1  # stale: served, refreshed in the background
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert calls == [0, 45]
    assert await reuse.get("k", compute) == 2
    clock.now = 45 + 61
    assert await reuse.get("k", compute) == 3  # older than twice fresh: computed now
    assert await reuse.get("other", compute) == 4  # keys apart


async def test_concurrent_first_requests_compute_once() -> None:
    started = 0
    gate = asyncio.Event()

    async def compute() -> str:
        nonlocal started
        started += 1
        await gate.wait()
        return "done"

    reuse: Reuse[str] = Reuse(30, clock=Clock())
    waiting = [asyncio.create_task(reuse.get("k", compute)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == ["done"] * 5
    assert started == 1


async def test_a_failed_refresh_keeps_the_stale_result() -> None:
    clock = Clock()
    results = iter([1])

    async def compute() -> int:
        return next(results)  # the second call raises StopIteration inside the task

    reuse: Reuse[int] = Reuse(10, clock=clock)
    assert await reuse.get("k", compute) == 1
    clock.now = 15
    assert await reuse.get("k", compute) == 1
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await reuse.get("k", compute) == 1


async def test_zero_computes_every_time() -> None:
    count = 0

    async def compute() -> int:
        nonlocal count
        count += 1
        return count

    reuse: Reuse[int] = Reuse(0)
    assert [await reuse.get("k", compute) for _ in range(3)] == [1, 2, 3]
