"""The core's decisions: which reps a flush, a refresh and a roster change publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas import windows as w
from schemas.roster import Rep, RosterRecord, Target, Targets, Team
from schemas.windows import epoch_minute
from services.aggregator.core import next_slice
from services.aggregator.domain.counters import DIALS
from services.aggregator.domain.rep import (
    APPLIED_HORIZON,
    HOUR_RETENTION_DAYS,
    MINUTE_RETENTION,
    RepState,
)
from services.aggregator.packing import loads
from tests.unit.aggregator.events import ev
from tests.unit.aggregator.floor import Floor

T0 = datetime(2026, 3, 10, 9, 20, 30, tzinfo=UTC)  # a Tuesday


def published(floor: Floor, now: datetime, *, refresh: bool = False) -> list[str]:
    reps = floor.core.reps
    reps.next_flush = reps.next_flush_behind = 0.0  # paced by their own duration: not tested here
    out = reps.refresh(now) if refresh else reps.flush(now)
    return sorted(snap.rep_id for snap in out.snapshots)


def test_a_flush_publishes_changed_reps_once() -> None:
    floor = Floor()
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    floor.apply(ev("call.started", "c2", T0, rep_id="r1"), T0)
    floor.apply(ev("call.started", "c3", T0, rep_id="r2"), T0)
    assert published(floor, T0) == ["r1", "r2"]
    assert published(floor, T0 + timedelta(seconds=1)) == []


def test_the_refresh_rebuilds_only_reps_whose_numbers_moved_with_time() -> None:
    floor = Floor()
    floor.apply(ev("call.started", "c1", T0 - timedelta(hours=3), rep_id="quiet"), T0)
    floor.apply(ev("call.started", "c2", T0, rep_id="busy"), T0)
    assert published(floor, T0) == ["busy", "quiet"]
    assert published(floor, T0 + timedelta(minutes=1), refresh=True) == []
    later = T0 + timedelta(minutes=15)  # c2's minute leaves the 15m window
    assert published(floor, later, refresh=True) == ["busy"]
    assert floor.core.reps.snapshot("busy", later).windows["15m"].dials == 0  # type: ignore[index]
    assert published(floor, later + timedelta(minutes=1), refresh=True) == []
    assert published(floor, T0 + timedelta(minutes=60), refresh=True) == ["busy"]  # 60m
    # a new local hour moves every rep's hour window bounds: rebuilt, published if changed
    assert published(floor, T0 + timedelta(minutes=61), refresh=True) == []


def test_a_roster_change_republishes_the_reps_it_touches_at_the_next_flush() -> None:
    floor = Floor()
    floor.core.roster_changed(RosterRecord(team=Team(team_id="t1", timezone="Asia/Shanghai")))
    floor.core.roster_changed(RosterRecord(rep=Rep(rep_id="r1", team_id="t1")))
    for rep in ("r1", "r2", "r3"):
        floor.apply(ev("call.started", f"c-{rep}", T0, rep_id=rep, team_id="t2"), T0)
    assert published(floor, T0) == ["r1", "r2", "r3"]
    targets = [Target(kpi="dials", value=50)]
    floor.core.roster_changed(
        RosterRecord(targets=Targets(subject="team", subject_id="t1", targets=targets))
    )
    assert published(floor, T0) == ["r1"]
    floor.core.roster_changed(RosterRecord(rep=Rep(rep_id="r2", team_id="t1", name="Bo")))
    assert published(floor, T0) == ["r2"]
    floor.core.roster_changed(RosterRecord(team=Team(team_id="t2", name="Two")))
    assert published(floor, T0) == ["r3"]
    snap = floor.core.reps.snapshot("r2", T0)
    assert (snap.team_id, snap.rep_name, snap.timezone) == ("t1", "Bo", "Asia/Shanghai")


def test_a_long_flush_waits_so_flushes_take_a_third_of_the_time_while_keeping_up() -> None:
    floor = Floor()
    # monotonic seconds the core reads: at the start, around each slice, at the end
    ticks = iter([0.0, 0.0, 1.0, 1.0, 2.0, 3.5, 3.5, 3.6, 3.6])
    floor.core.reps.clock = lambda: next(ticks)
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    assert [s.rep_id for s in floor.core.reps.flush(T0).snapshots] == ["r1"]  # took 1 s
    floor.apply(ev("call.started", "c2", T0, rep_id="r2"), T0)
    assert floor.core.reps.flush(T0).snapshots == []  # at 2.0: waits until 3.0
    assert [s.rep_id for s in floor.core.reps.flush(T0).snapshots] == ["r2"]  # at 3.5


def test_a_worker_behind_lets_flushes_take_only_the_snapshot_share_of_its_time() -> None:
    """Catching up on a backlog (its changes arrived over 5 s before the flush), a worker
    coalesces each rep's changes for longer: flushes take at most 5 % of its time."""
    floor = Floor()
    assert floor.core.reps.cadence.snapshot_share == 0.05
    later = T0 + timedelta(seconds=10)  # what is published arrived 10 s before
    ticks = iter([0.0, 0.0, 1.0, 1.0, 3.5, 19.9, 20.5, 20.5, 20.6, 20.6])
    floor.core.reps.clock = lambda: next(ticks)
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    assert [s.rep_id for s in floor.core.reps.flush(later).snapshots] == ["r1"]  # took 1 s
    floor.apply(ev("call.started", "c2", T0, rep_id="r2"), T0)
    assert floor.core.reps.flush(later).snapshots == []  # at 3.5: waits until 20.0
    assert floor.core.reps.flush(later).snapshots == []  # at 19.9
    assert [s.rep_id for s in floor.core.reps.flush(later).snapshots] == ["r2"]  # at 20.5


def test_a_worker_that_has_caught_up_flushes_fresh_changes_at_the_keeping_up_pace() -> None:
    """Behind for a moment (a pause, a rebalance), then fresh events again: the wait after the
    flush made while behind is the keeping-up one, not 19 times the flush."""
    floor = Floor()
    later = T0 + timedelta(seconds=10)
    ticks = iter([0.0, 0.0, 1.0, 1.0, 3.5, 3.5, 3.6, 3.6])
    floor.core.reps.clock = lambda: next(ticks)
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), later, arrived=T0)  # 10 s late
    assert [s.rep_id for s in floor.core.reps.flush(later).snapshots] == ["r1"]  # took 1 s
    floor.apply(ev("call.started", "c2", later, rep_id="r2"), later, arrived=later)  # fresh
    assert [s.rep_id for s in floor.core.reps.flush(later).snapshots] == ["r2"]  # at 3.5


def test_a_worker_a_few_seconds_late_without_a_backlog_keeps_the_keeping_up_pace() -> None:
    """On a busy machine events reach stage 2 2-3 s after ingest with nothing to catch up on:
    such a worker is not behind, and its next flush waits twice the last, not 19 times."""
    floor = Floor()
    later = T0 + timedelta(seconds=3)
    ticks = iter([0.0, 0.0, 1.0, 1.0, 3.5, 3.5, 3.6, 3.6])
    floor.core.reps.clock = lambda: next(ticks)
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), later, arrived=T0)  # 3 s late
    assert [s.rep_id for s in floor.core.reps.flush(later).snapshots] == ["r1"]  # took 1 s
    floor.apply(ev("call.started", "c2", T0, rep_id="r2"), later, arrived=T0)  # 3 s late too
    assert [s.rep_id for s in floor.core.reps.flush(later).snapshots] == ["r2"]  # at 3.5


def test_only_the_time_a_flush_builds_slices_counts_not_the_drivers_in_between() -> None:
    """The driver publishes each slice and lets the worker run before asking for the next:
    counted, that time held back the snapshots of a worker that was merely busy."""
    floor = Floor()
    ticks = iter([0.0, 0.0, 0.01, 5.0, 5.2, 5.2, 5.21, 5.21])
    floor.core.reps.clock = lambda: next(ticks)
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    parts = floor.core.reps.flush_slices(T0)
    assert [s.rep_id for s in next(parts).snapshots] == ["r1"]  # built in 0.01 s
    assert next(parts, None) is None  # the driver took until 5.0: the next may go at 5.19
    floor.apply(ev("call.started", "c2", T0, rep_id="r2"), T0)
    assert [s.rep_id for s in floor.core.reps.flush(T0).snapshots] == ["r2"]  # at 5.2


def test_the_time_the_driver_took_to_deliver_the_slices_counts_in_the_share() -> None:
    """Publishing a slice (encoding and sending the snapshots) is the flush's work too: left
    out, flushes of a draining worker took ~11 % of its time at a 5 % share."""
    floor = Floor()
    ticks = iter([0.0, 0.0, 0.01, 5.0, 6.0, 7.1, 7.1, 7.11, 7.11])
    floor.core.reps.clock = lambda: next(ticks)
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    parts = floor.core.reps.flush_slices(T0)
    assert [s.rep_id for s in next_slice(parts).snapshots] == ["r1"]  # type: ignore[union-attr]
    assert next_slice(parts, 1.0) is None  # built in 0.01 s, delivered in 1 s: next at 7.02
    floor.apply(ev("call.started", "c2", T0, rep_id="r2"), T0)
    assert floor.core.reps.flush(T0).snapshots == []  # at 6.0
    assert [s.rep_id for s in floor.core.reps.flush(T0).snapshots] == ["r2"]  # at 7.1


def test_a_flush_asked_for_while_one_is_under_way_publishes_nothing() -> None:
    """A timer's flush while the flush after a batch publishes its slices: run side by side,
    each took its own share of the worker's time (~20 % of a draining worker at 5 %)."""
    floor = Floor()
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    parts = floor.core.reps.flush_slices(T0)
    assert [s.rep_id for s in next(parts).snapshots] == ["r1"]
    floor.apply(ev("call.started", "c2", T0, rep_id="r2"), T0)
    assert published(floor, T0) == []  # the first flush is still under way
    parts.close()  # the driver stops it halfway (a rebalance): it is over
    assert published(floor, T0) == ["r2"]


def test_timers_keep_no_decoded_copy_of_the_reps_they_only_visit() -> None:
    floor = Floor()
    for rep in ("r1", "r2"):
        floor.apply(ev("call.started", f"c-{rep}", T0, rep_id=rep), T0)
    assert published(floor, T0) == ["r1", "r2"]
    reps = floor.core.reps
    reps.forget()  # a rebalance: the store is the truth
    assert published(floor, T0, refresh=True) == ["r1", "r2"]  # never published by this worker
    assert reps.judge(T0) == []
    assert reps.live == {}  # a month of a rep decoded is ~44 KB: 10,000 of them ~440 MB
    floor.apply(ev("call.started", "c-r3", T0, rep_id="r1"), T0)  # r1 changes: kept decoded
    assert published(floor, T0 + timedelta(minutes=1), refresh=True) == []
    assert set(reps.live) == {"r1"}
    assert published(floor, T0 + timedelta(minutes=1)) == ["r1"]
    assert reps.snapshot("r1", T0).windows["today"].dials == 2  # type: ignore[index]


def test_facts_applied_as_of_their_time_leave_a_rep_pruned_to_its_retention() -> None:
    """A replay applies a long log batch by batch, publishing nothing until it ends: each
    saved rep is pruned as of the batch's time, so it keeps what it kept live (before, a year
    of replay grew every rep by every call's version and every hour's bucket, and each batch
    saved them all again)."""
    floor = Floor()
    for day in range(30):
        for n in range(20):
            at = T0 + timedelta(days=day, minutes=10 * n)
            call = f"c{day}-{n}"
            floor.apply(ev("call.started", call, at, rep_id="r1"), at)
            floor.apply(ev("call.answered", call, at + timedelta(seconds=5), rep_id="r1"), at)
    stored = floor.core.reps.store.get(b"r1")
    assert stored is not None
    state = RepState.from_dict(loads(stored))
    last = T0 + timedelta(days=29, minutes=190)
    recent = [
        n for n in range(20) if T0 + timedelta(days=28, minutes=10 * n) >= last - APPLIED_HORIZON
    ]
    assert len(state.applied) == 20 + len(recent) == 33  # the calls of the last 26 h, not 600
    assert min(state.minutes) >= epoch_minute(last - MINUTE_RETENTION)
    assert len(state.hours) <= HOUR_RETENTION_DAYS * 24
    assert state.days[w.local_day(last, ZoneInfo("UTC")).isoformat()][DIALS] == 20


def test_stage_1_keeps_the_calls_saved_last_decoded_and_drops_them_when_invalidated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.aggregator import core

    monkeypatch.setattr(core, "DECODED_CALLS", 2)
    floor = Floor()
    for call_id in ("a", "b", "c"):
        floor.apply(ev("call.started", call_id, T0, rep_id="r1", direction="outbound"), T0)
    stage = floor.core.calls
    assert list(stage._decoded) == [b"b", b"c"]  # noqa: SLF001  the oldest saved went
    floor.apply(ev("call.answered", "b", T0, rep_id="r1"), T0)
    assert list(stage._decoded) == [b"c", b"b"]  # noqa: SLF001  saved again: now the newest
    # a state written behind the core (recovery, a checkpoint loaded) is read from the store
    stored = floor.calls["c"]
    stored.rep_id = "r2"
    floor.calls["c"] = stored  # invalidates
    assert stage._decoded == {}  # noqa: SLF001
    assert stage._load("c").rep_id == "r2"  # noqa: SLF001
