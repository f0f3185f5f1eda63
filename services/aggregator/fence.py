"""The zombie fence: a worker writes nothing unless its group membership is proven recent.

A worker frozen past its session timeout (SIGSTOP, a paused VM, a swap storm, a consumer
thread starved of the GIL) is dropped from the group, and its partitions move. When it wakes,
its timers and agents run before its consumer thread learns that it was dropped: without a
fence it publishes snapshots computed from its old state over the new owner's (which the new
owner does not repeat, since they did not change for it), and changelog records that a later
recovery would replay over the new owner's (soak run 9 of 2026-12-02: 90 reps not converged).

Kafka's own answer, a transactional producer fenced by epoch, does not fit this topology (issue
12). So before each write the worker looks at when the group coordinator last proved its
membership (a heartbeat answered, a join completed: `faust_compat.membership`). Younger than
`limit`: it writes. Older: it waits for the next proof. The same generation proves it was never
dropped, and it writes; another generation, or none within `wait`, means its partitions may have
moved while it slept, and it must stop without writing (fail-stop: the restart re-reads in order).

`limit` is the session timeout less one and a half heartbeat intervals: the broker keeps a
member for a session timeout after the last heartbeat it received, which is before the worker
saw its answer, so the worker always stops trusting itself first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Proof = tuple[int, float]
"""The group generation, and when (monotonic) the coordinator last confirmed the membership."""


def heartbeat_interval(session_timeout: float) -> float:
    """Kafka's advice, at most a third of the session timeout, and Faust's 3 s at most."""
    return min(3.0, session_timeout / 3)


def trust_limit(session_timeout: float) -> float:
    """How old a proof of membership may be for the worker to write without a new one."""
    return session_timeout - 1.5 * heartbeat_interval(session_timeout)


class Fence:
    """`await fence.check()` before a write: None to write, or why the worker must stop."""

    def __init__(
        self,
        proof: Callable[[], Proof | None],
        limit: float,
        wait: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll: float = 0.05,
    ) -> None:
        self.proof, self.limit, self.wait = proof, limit, wait
        self.clock, self.sleep, self.poll = clock, sleep, poll

    async def check(self) -> str | None:
        last = self.proof()
        if last is None:
            return None  # not in a group yet: no partitions, nothing of another's to overwrite
        generation, proven_at = last
        began = self.clock()
        if began - proven_at <= self.limit:
            return None
        silent = began - proven_at
        while self.clock() - began < self.wait:
            await self.sleep(self.poll)
            now = self.proof()
            if now is None or now[1] <= proven_at:
                continue
            if now[0] == generation:
                return None  # still the same member of the same generation
            return (
                f"the group moved from generation {generation} to {now[0]} while this worker "
                f"was silent for {silent:.1f} s: its partitions may have moved"
            )
        return (
            f"no proof of group membership for {silent + self.wait:.1f} s (session timeout "
            "passed): its partitions may have moved"
        )
