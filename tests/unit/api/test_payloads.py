"""The team payload assembled from cached rep rows is the whole model dumped at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas.kpis import HourlyPoint, TargetProgress, WindowName
from schemas.roster import Rep, Target
from services.api.kpis import KpiService, idle_rep_out
from services.api.payloads import cut_age, rep_out
from services.api.readmodel import ReadModel
from services.api.roster import RosterCache, TeamRoster
from services.api.routes.schemas import RepKpisOut, TeamKpisOut
from tests.unit.api.snapshots import make_snapshot

NOW = datetime(2025, 3, 12, 23, 50, tzinfo=UTC)
IDLE = Rep(rep_id="b-idle", name="Idle", team_id="t1")
TARGETS = [Target(kpi="dials", window="today", value=50)]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Roster:
    """A roster that knows one rep of t1 with no activity."""

    async def team(self, team_id: str) -> TeamRoster:
        reps = [IDLE] if team_id == "t1" else []
        return TeamRoster(None, reps, {r.rep_id: TARGETS for r in reps})


def service(clock: Clock) -> KpiService:
    roster: RosterCache = Roster()  # type: ignore[assignment]
    return KpiService(ReadModel(clock=clock), roster, team_cache_seconds=0.0)


def reference(kpis: KpiService, team_id: str, window: WindowName, *, hourly: bool) -> bytes:
    """The payload built and dumped as one model, as the route did before rows were cached."""
    now = kpis.readmodel.clock()
    view = kpis.readmodel.team(team_id, window, now)
    assert view is not None
    rows: list[RepKpisOut] = [rep_out(r, hourly=hourly) for r in view.reps]
    counts = dict(view.status_counts)
    if team_id == "t1":
        rows.append(idle_rep_out(IDLE, view.timezone, TARGETS, window, now))
        counts["idle"] = counts.get("idle", 0) + 1
    return (
        TeamKpisOut(
            **view.totals.model_dump(),
            team_id=team_id,
            timezone=view.timezone,
            as_of=view.as_of,
            lag_seconds=view.lag_seconds,
            rep_count=len(rows),
            status_counts=counts,
            reps=sorted(rows, key=lambda row: row.rep_id),
        )
        .model_dump_json()
        .encode()
    )


def feed(kpis: KpiService, at: datetime) -> None:
    target = TargetProgress(
        kpi="dials", window="today", target=50, value=20, progress=0.4, met=False
    )
    hourly = [HourlyPoint(hour=9, dials=4, connects=1, connect_rate=0.25)]
    rm = kpis.readmodel
    rm.apply(make_snapshot("a", "t1", at, dials=20, connects=5, targets=[target]))
    tricky = make_snapshot("c", "t1", at, status="on_call", dials=7, talk_seconds=61.5)
    rm.apply(tricky.model_copy(update={"rep_name": 'x,"age_seconds":1,"y', "hourly": hourly}))
    rm.apply(make_snapshot("d", "t2", at - timedelta(minutes=3), dials=2))


def dials_by_rep(body: bytes) -> dict[str, int]:
    return {row["rep_id"]: row["dials"] for row in json.loads(body)["reps"]}


@pytest.mark.parametrize("window", ["today", "15m", "week"])
@pytest.mark.parametrize("hourly", [False, True])
async def test_the_payload_is_the_whole_model_dumped_at_once(
    window: WindowName, hourly: bool
) -> None:
    clock = Clock()
    kpis = service(clock)
    feed(kpis, NOW - timedelta(seconds=30))
    for team_id in ("t1", "t2"):
        expected = reference(kpis, team_id, window, hourly=hourly)
        assert await kpis.team_json(team_id, window, hourly=hourly) == expected
        clock.now += timedelta(seconds=7)  # rows come from the cache, with their new age
        expected = reference(kpis, team_id, window, hourly=hourly)
        assert await kpis.team_json(team_id, window, hourly=hourly) == expected


async def test_a_new_snapshot_of_a_rep_shows_in_the_next_payload() -> None:
    clock = Clock()
    kpis = service(clock)
    feed(kpis, NOW - timedelta(seconds=30))
    assert dials_by_rep(await kpis.team_json("t1", "today"))["a"] == 20
    kpis.readmodel.apply(make_snapshot("a", "t1", NOW, dials=21, status="on_call"))
    body = await kpis.team_json("t1", "today")
    assert dials_by_rep(body)["a"] == 21
    assert json.loads(body)["dials"] == 28
    assert json.loads(body)["status_counts"] == {"on_call": 2, "idle": 1}
    assert body == reference(kpis, "t1", "today", hourly=False)


async def test_a_rep_moving_team_moves_its_row() -> None:
    clock = Clock()
    kpis = service(clock)
    feed(kpis, NOW - timedelta(seconds=30))
    await kpis.team_json("t1", "today")
    await kpis.team_json("t2", "today")
    kpis.readmodel.apply(make_snapshot("a", "t2", NOW, dials=20))
    assert set(dials_by_rep(await kpis.team_json("t1", "today"))) == {"b-idle", "c"}
    moved = await kpis.team_json("t2", "today")
    assert dials_by_rep(moved) == {"a": 20, "d": 2}
    assert json.loads(moved)["dials"] == 22


async def test_rows_of_a_window_that_rolled_over_are_rebuilt() -> None:
    clock = Clock()
    kpis = service(clock)
    feed(kpis, NOW - timedelta(seconds=30))
    assert dials_by_rep(await kpis.team_json("t1", "today"))["a"] == 20
    clock.now = NOW + timedelta(minutes=15)  # past midnight: a new day, no new snapshot
    body = await kpis.team_json("t1", "today")
    row = next(r for r in json.loads(body)["reps"] if r["rep_id"] == "a")
    assert row["dials"] == 0
    assert row["targets"][0]["value"] == 0
    assert body == reference(kpis, "t1", "today", hourly=False)
    clock.now = NOW  # a clock set back: rows built later are not served for earlier times
    assert dials_by_rep(await kpis.team_json("t1", "today"))["a"] == 20


def test_cut_age_splits_around_the_value_only() -> None:
    row = rep_out_json('a "b",\\"age_seconds\\":9')
    head, tail = cut_age(row)
    assert head + b"12.5" + tail == row
    assert head.endswith(b',"age_seconds":')
    assert tail.startswith(b',"status":')


def rep_out_json(name: str) -> bytes:
    rm = ReadModel(clock=lambda: NOW)
    rm.apply(
        make_snapshot("a", "t1", NOW - timedelta(seconds=12.5)).model_copy(
            update={"rep_name": name}
        )
    )
    view = rm.rep("a", "today")
    assert view is not None
    return rep_out(view).model_dump_json().encode()
