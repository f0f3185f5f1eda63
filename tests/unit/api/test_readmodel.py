"""The read model: latest snapshot per rep, team totals, leaderboards, SSE fan-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.kpis import WINDOWS, Kpis, RepSnapshot, TargetProgress, WindowName
from services.api.readmodel import ReadModel
from services.api.routes.schemas import Metric
from services.api.windows import bounds
from tests.unit.api.snapshots import make_snapshot

NOW = datetime(2025, 3, 12, 14, 30, tzinfo=UTC)


def model(now: datetime = NOW) -> ReadModel:
    return ReadModel(clock=lambda: now)


def test_keeps_the_latest_snapshot_by_as_of() -> None:
    rm = model()
    newer = make_snapshot("r1", "t1", NOW - timedelta(seconds=5), dials=7)
    older = make_snapshot("r1", "t1", NOW - timedelta(seconds=60), dials=3)
    assert rm.apply(newer)
    assert not rm.apply(older)
    assert not rm.apply(newer)  # a redelivery
    view = rm.rep("r1", "today")
    assert view is not None
    assert view.kpis.dials == 7


def test_team_totals_combine_reps_and_recompute_ratios() -> None:
    rm = model()
    rm.apply(make_snapshot("a", "t1", NOW, dials=10, connects=4, talk_seconds=400))
    rm.apply(make_snapshot("b", "t1", NOW, dials=30, connects=6, talk_seconds=200, conversions=3))
    rm.apply(make_snapshot("c", "t2", NOW, dials=99))
    team = rm.team("t1", "today")
    assert team is not None
    assert [r.snapshot.rep_id for r in team.reps] == ["a", "b"]
    assert team.totals.dials == 40
    assert team.totals.connects == 10
    assert team.totals.connect_rate == 0.25
    assert team.totals.avg_talk_seconds == 60
    assert team.totals.conversion_rate == 0.3
    assert team.status_counts == {"idle": 2}
    assert rm.team("nobody", "today") is None


def test_a_rep_moving_team_leaves_the_old_one() -> None:
    rm = model()
    rm.apply(make_snapshot("a", "t1", NOW - timedelta(seconds=1), dials=1))
    rm.apply(make_snapshot("a", "t2", NOW, dials=2))
    assert rm.team("t1", "today") is None
    assert rm.team_ids() == ["t2"]


class Clock:
    """A settable clock for a read model."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def totals(rm: ReadModel, team_id: str, window: WindowName = "today") -> Kpis:
    kpis = rm.team_totals(team_id, window)
    assert kpis is not None
    return kpis


def test_cached_team_numbers_follow_every_change_of_a_rep() -> None:
    rm = model()
    rm.apply(make_snapshot("a", "t1", NOW - timedelta(seconds=3), dials=10, status="on_call"))
    rm.apply(make_snapshot("b", "t1", NOW - timedelta(seconds=3), dials=5))
    assert totals(rm, "t1").dials == 15
    summary = rm.team_summary("t1")
    assert summary is not None
    assert summary.status_counts == {"on_call": 1, "idle": 1}

    rm.apply(make_snapshot("a", "t1", NOW - timedelta(seconds=2), dials=12, lag_seconds=4.0))
    assert totals(rm, "t1").dials == 17
    summary = rm.team_summary("t1")
    assert summary is not None
    assert summary.status_counts == {"idle": 2}
    assert summary.lag_seconds == 6.0  # 4 s in the pipeline, 2 s to this replica
    team = rm.team("t1", "today")
    assert team is not None
    assert team.totals.dials == 17

    rm.remove("b")
    assert totals(rm, "t1").dials == 12
    rm.remove("a")
    assert rm.team_totals("t1", "today") is None
    assert rm.team_summary("t1") is None


def test_a_rep_moving_team_moves_its_numbers_between_the_totals() -> None:
    rm = model()
    rm.apply(make_snapshot("a", "t1", NOW - timedelta(seconds=1), dials=3))
    rm.apply(make_snapshot("b", "t1", NOW, dials=4))
    rm.apply(make_snapshot("c", "t2", NOW, dials=5))
    assert (totals(rm, "t1").dials, totals(rm, "t2").dials) == (7, 5)
    rm.apply(make_snapshot("a", "t2", NOW, dials=3))
    assert (totals(rm, "t1").dials, totals(rm, "t2").dials) == (4, 8)
    moved = rm.team_summary("t2")
    assert moved is not None
    assert moved.rep_ids == ("a", "c")


def test_cached_totals_roll_over_with_their_windows() -> None:
    clock = Clock()
    rm = ReadModel(clock=clock)
    rm.apply(make_snapshot("a", "t1", NOW, dials=9))
    assert totals(rm, "t1").dials == 9
    assert totals(rm, "t1", "15m").dials == 9

    clock.now = NOW + timedelta(minutes=14)  # rolling numbers stand, the window's bounds move
    rolling = totals(rm, "t1", "15m")
    assert rolling.dials == 9
    assert rolling.window_end == bounds("15m", clock.now, "UTC")[1]
    clock.now = NOW + timedelta(minutes=16)
    assert totals(rm, "t1", "15m").dials == 0

    clock.now = NOW + timedelta(days=1)
    tomorrow = totals(rm, "t1")
    assert tomorrow.dials == 0
    assert tomorrow.window_start == datetime(2025, 3, 13, tzinfo=UTC)
    clock.now = NOW  # asked about an earlier time, the numbers of that time
    assert totals(rm, "t1").dials == 9


def test_cached_totals_drop_a_rep_whose_own_day_ended() -> None:
    clock = Clock()  # 14:30 UTC: 22:30 in Shanghai, whose day ends at 16:00 UTC
    rm = ReadModel(clock=clock)
    rm.apply(make_snapshot("a", "t1", NOW, dials=9))
    rm.apply(make_snapshot("b", "t1", NOW, timezone="Asia/Shanghai", dials=4))
    assert totals(rm, "t1").dials == 13
    clock.now = NOW + timedelta(hours=2)
    assert totals(rm, "t1").dials == 9


moves = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["t1", "t2", None]),
        st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York"]),
        st.integers(0, 20),
        st.integers(0, 24 * 60),
    ),
    max_size=30,
)


@settings(max_examples=50, deadline=None)
@given(moves)
def test_cached_team_views_equal_views_computed_afresh(
    steps: list[tuple[str, str | None, str, int, int]],
) -> None:
    clock = Clock()
    rm = ReadModel(clock=clock)
    for rep_id, team_id, timezone, dials, minutes in steps:
        clock.now += timedelta(minutes=minutes)
        if team_id is None:
            rm.remove(rep_id)
        else:
            snapshot = make_snapshot(rep_id, team_id, clock.now, timezone=timezone, dials=dials)
            rm.apply(snapshot)
        fresh = ReadModel(clock=clock)
        for snapshot in rm.snapshots():
            fresh.apply(snapshot, replayed=True)
        for team in ("t1", "t2"):
            for window in WINDOWS:
                cached, computed = rm.team(team, window), fresh.team(team, window)
                assert (cached is None) == (computed is None)
                if cached is not None and computed is not None:
                    assert cached.totals == computed.totals
                    assert cached.status_counts == computed.status_counts
                    assert cached.as_of == computed.as_of
                    assert cached.lag_seconds == computed.lag_seconds
                    assert [r.kpis for r in cached.reps] == [r.kpis for r in computed.reps]


def test_an_ended_window_reads_as_zero_for_the_current_one() -> None:
    yesterday = NOW - timedelta(days=1)
    rm = model()
    target = TargetProgress(
        kpi="dials", window="today", target=50, value=40, progress=0.8, met=False
    )
    rm.apply(make_snapshot("a", "t1", yesterday, dials=40, targets=[target]))
    view = rm.rep("a", "today")
    assert view is not None
    assert view.kpis.dials == 0
    assert view.kpis.window_start == datetime(2025, 3, 12, tzinfo=UTC)
    assert view.targets[0].value == 0
    assert view.targets[0].progress == 0
    week = rm.rep("a", "week")
    assert week is not None
    assert week.kpis.dials == 40  # yesterday is in the same ISO week


def test_lag_adds_delivery_delay_except_while_catching_up() -> None:
    rm = model()
    rm.apply(make_snapshot("live", "t", NOW - timedelta(seconds=2), lag_seconds=1.0))
    rm.apply(make_snapshot("old", "t", NOW - timedelta(hours=3), lag_seconds=1.0), replayed=True)
    live, old = rm.rep("live", "today"), rm.rep("old", "today")
    assert live is not None
    assert old is not None
    assert live.lag_seconds == 3.0
    assert old.lag_seconds == 1.0
    assert old.age_seconds == 3 * 3600


@pytest.mark.parametrize(
    ("metric", "floors", "expected"),
    [
        ("conversions", {}, [("b", 1, 5.0), ("a", 2, 3.0), ("c", 2, 3.0), ("d", 4, 0.0)]),
        ("conversions", {"avg_talk_seconds": 100}, [("a", 1, 3.0), ("c", 1, 3.0)]),
        ("conversions", {"avg_talk_seconds": 200}, [("c", 1, 3.0)]),
        ("avg_talk_seconds", {}, [("c", 1, 300.0), ("a", 2, 120.0), ("b", 3, 10.0)]),
        ("dials", {"connects": 11}, []),
    ],
)
def test_leaderboard_ranks_with_quality_floors(
    metric: Metric, floors: dict[str, float], expected: list[tuple[str, int, float]]
) -> None:
    rm = model()
    rm.apply(make_snapshot("a", "t1", NOW, dials=20, connects=10, talk_seconds=1200, conversions=3))
    rm.apply(make_snapshot("b", "t1", NOW, dials=40, connects=10, talk_seconds=100, conversions=5))
    rm.apply(make_snapshot("c", "t2", NOW, dials=10, connects=2, talk_seconds=600, conversions=3))
    rm.apply(make_snapshot("d", "t2", NOW, dials=5))  # no connects: null avg, never ranked on it
    rows = rm.leaderboard(metric, "today", floors=floors)
    assert [(r.rep.snapshot.rep_id, r.rank, r.value) for r in rows] == expected


def test_leaderboard_by_team_and_limit() -> None:
    rm = model()
    for i in range(5):
        rm.apply(make_snapshot(f"r{i}", "t1" if i % 2 else "t2", NOW, dials=i))
    rows = rm.leaderboard("dials", "today", team_id="t2", limit=2)
    assert [r.rep.snapshot.rep_id for r in rows] == ["r4", "r2"]


def test_leaderboard_rejects_unknown_kpis() -> None:
    with pytest.raises(ValueError, match="unknown KPI"):
        model().leaderboard("dials", "today", floors={"shoe_size": 3})


async def test_subscribers_get_updates_of_their_team() -> None:
    rm = model()
    team_sub, all_sub = rm.subscribe("t1"), rm.subscribe()
    rm.apply(make_snapshot("a", "t1", NOW, dials=1))
    rm.apply(make_snapshot("b", "t2", NOW, dials=2))
    first = await team_sub.get()
    assert isinstance(first, RepSnapshot)
    assert first.rep_id == "a"
    got = [await all_sub.get(), await all_sub.get()]
    assert [u.rep_id for u in got if isinstance(u, RepSnapshot)] == ["a", "b"]


async def test_a_slow_subscriber_is_dropped_without_blocking_others() -> None:
    rm = model()
    slow, fast = rm.subscribe(maxsize=2), rm.subscribe(maxsize=100)
    for i in range(5):
        rm.apply(make_snapshot(f"r{i}", "t1", NOW, dials=i))
    assert slow.dropped
    assert await slow.get() is None  # the reader sees the end at once
    assert rm.subscriber_count == 1
    assert rm.dropped_subscribers == 1
    received = [await fast.get() for _ in range(5)]
    assert all(u is not None for u in received)
    rm.unsubscribe(fast)
    assert rm.subscriber_count == 0
