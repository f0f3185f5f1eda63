"""Call retention, the window plans and the shared partitioner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiokafka.partitioner import DefaultPartitioner

from services.aggregator.domain.calls import Rules, forgettable
from services.aggregator.domain.rep import window_plans
from services.kit.partitioning import partition_for
from tests.unit.aggregator.events import ev, full_call
from tests.unit.aggregator.floor import Floor

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_partition_matches_kafkas_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for n in (1, 4, 12):
        for key in (b"alice", b"rep-0042", "李雷".encode()):
            assert partition_for(key, n) == partitioner(key, list(range(n)), list(range(n)))


def test_an_ended_call_is_forgotten_after_the_retention_an_open_one_never() -> None:
    rules = Rules(call_retention_seconds=3600)
    floor = Floor(rules=rules)
    for event in full_call("done", "r1", T0, talk=60):
        floor.apply(event, T0)
    floor.apply(ev("call.started", "open", T0, rep_id="r1"), T0)
    last = floor.calls["done"].last_event_at
    assert last is not None
    assert not forgettable(floor.calls["done"], last + timedelta(minutes=59), rules)
    # the retention, and a minute's margin for a partition said read to its end
    assert not forgettable(floor.calls["done"], last + timedelta(minutes=61), rules)
    assert forgettable(floor.calls["done"], last + timedelta(minutes=62), rules)
    assert floor.forget_ended(last + timedelta(minutes=62)) == 1
    assert floor.held() == {"open"}
    assert floor.calls["done"].forgotten  # its event ids stay, for the forgotten retention
    # the rep keeps what the forgotten call credited
    snap = floor.snapshot("r1", T0 + timedelta(hours=2))
    assert snap.windows["today"].dials == 2  # type: ignore[index]


def test_window_plans_change_with_the_minute_and_the_zone() -> None:
    ny, utc = ZoneInfo("America/New_York"), ZoneInfo("UTC")
    minute = int(T0.timestamp() // 60)
    a, b = window_plans(utc, minute), window_plans(utc, minute + 1)
    assert {p.window: p.minutes for p in a}["15m"] != {p.window: p.minutes for p in b}["15m"]
    assert {p.window: p.days for p in a}["today"] == frozenset({"2026-03-10"})
    late = int(datetime(2026, 3, 11, 3, 0, tzinfo=UTC).timestamp() // 60)  # 22:00 in New York
    assert {p.window: p.days for p in window_plans(ny, late)}["today"] == frozenset({"2026-03-10"})
