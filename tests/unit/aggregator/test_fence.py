"""The zombie fence: a worker writes only while its group membership is proven recent."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.protocol.group import HeartbeatRequest

from services.aggregator import faust_compat
from services.aggregator.fence import Fence, heartbeat_interval, trust_limit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def fence_on(proofs: list[tuple[float, tuple[int, float]]], clock: Clock) -> Fence:
    """A fence whose proof becomes each `(at, proof)` once the clock reaches `at`."""

    def proof() -> tuple[int, float] | None:
        current = None
        for at, value in proofs:
            if clock.now >= at:
                current = value
        return current

    return Fence(proof, limit=25.5, wait=30.0, clock=clock, sleep=clock.sleep)


def test_the_limit_leaves_the_broker_room() -> None:
    assert heartbeat_interval(30) == 3.0
    assert trust_limit(30) == 25.5
    assert heartbeat_interval(6) == 2.0
    assert trust_limit(6) == 3.0  # the soak's session timeout: heartbeats every 2 s


async def test_a_recent_proof_lets_the_write_through_at_once() -> None:
    clock = Clock()
    fence = fence_on([(0, (4, 90.0))], clock)
    assert await fence.check() is None
    assert clock.now == 100.0


async def test_no_group_yet_is_not_a_zombie() -> None:
    clock = Clock()
    assert await fence_on([], clock).check() is None


async def test_after_a_freeze_the_same_generation_proves_the_worker_was_never_dropped() -> None:
    clock = Clock()
    # frozen 40 s after the last heartbeat; the next one, 1 s after waking, is answered
    fence = fence_on([(0, (4, 60.0)), (101.0, (4, 101.0))], clock)
    assert await fence.check() is None
    assert 101.0 <= clock.now < 101.2


async def test_a_new_generation_after_a_freeze_means_stop() -> None:
    clock = Clock()
    # the coordinator dropped it: the heartbeat is refused, the rejoin gets generation 5
    fence = fence_on([(0, (4, 60.0)), (102.0, (5, 102.0))], clock)
    reason = await fence.check()
    assert reason is not None
    assert "generation 4 to 5" in reason
    assert "silent for 40.0 s" in reason


async def test_no_proof_within_the_wait_means_stop() -> None:
    clock = Clock()
    fence = fence_on([(0, (4, 60.0))], clock)
    reason = await fence.check()
    assert reason is not None
    assert "no proof of group membership" in reason
    assert clock.now >= 130.0


async def test_a_heartbeat_the_coordinator_answers_proves_the_membership() -> None:
    """aiokafka's own `_do_heartbeat` runs on a fake coordinator: an answered heartbeat is
    recorded with its generation, a refused one is not."""
    answers = iter([0, 25])  # NoError, then UnknownMemberId

    async def send_req(request: Any) -> Any:
        assert isinstance(request, HeartbeatRequest)
        return SimpleNamespace(error_code=next(answers))

    reset: list[bool] = []
    coordinator = SimpleNamespace(
        group_id="fence-test",
        generation=7,
        member_id="m-1",
        _send_req=send_req,
        reset_generation=lambda: reset.append(True),
    )
    app = SimpleNamespace(conf=SimpleNamespace(id="fence-test"))
    assert faust_compat.membership(app) is None
    assert await faust_compat._do_heartbeat(coordinator) is True  # noqa: SLF001
    proof = faust_compat.membership(app)
    assert proof is not None
    assert proof[0] == 7
    coordinator.generation = 8
    assert await faust_compat._do_heartbeat(coordinator) is False  # noqa: SLF001
    assert reset == [True]
    assert faust_compat.membership(app) == proof  # a refused heartbeat proves nothing


def test_a_heartbeat_method_that_disappeared_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiokafka.consumer.group_coordinator import GroupCoordinator

    monkeypatch.delattr(GroupCoordinator, "_do_heartbeat")
    with pytest.raises(faust_compat.IncompatibleFaust, match="_do_heartbeat is gone"):
        faust_compat.check()
