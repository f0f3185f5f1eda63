"""A snapshot's signature changes with every value a wallboard shows, and only with those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.kpis import HourlyPoint, Kpis, RepSnapshot, TargetProgress
from services.aggregator.domain.rep import signature

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
VOLATILE = {"as_of", "lag_seconds"}
"""Snapshot fields a wallboard does not compare (window bounds are left out too)."""


def _snap(**changes: Any) -> RepSnapshot:
    window = Kpis(window="today", window_start=NOW, window_end=NOW + timedelta(days=1), dials=3)
    target = TargetProgress(
        kpi="dials", window="today", target=50, value=3, progress=0.06, met=False
    )
    fields: dict[str, Any] = {
        "rep_id": "r1",
        "team_id": "t1",
        "rep_name": "Wang Fang",
        "timezone": "Asia/Shanghai",
        "status": "idle",
        "status_since": NOW,
        "as_of": NOW,
        "lag_seconds": 0.5,
        "last_event_at": NOW,
        "windows": {"today": window},
        "targets": [target],
        "hourly": [HourlyPoint(hour=9, dials=3, connects=1, connect_rate=0.333333)],
    }
    return RepSnapshot(**(fields | changes))


def test_time_of_computing_and_window_bounds_do_not_change_it() -> None:
    base = _snap()
    moved = base.windows["today"].model_copy(
        update={"window_start": NOW + timedelta(minutes=1), "window_end": NOW}
    )
    later = _snap(as_of=NOW + timedelta(seconds=5), lag_seconds=2.0, windows={"today": moved})
    assert signature(later) == signature(base)


OTHER = {
    "rep_id": "r2",
    "team_id": "t2",
    "rep_name": "Li Lei",
    "timezone": "UTC",
    "status": "on_call",
    "status_since": NOW - timedelta(minutes=1),
    "last_event_at": NOW - timedelta(minutes=1),
    "targets": [],
    "hourly": [HourlyPoint(hour=9, dials=4, connects=1, connect_rate=0.25)],
}


@pytest.mark.parametrize("name", sorted(set(RepSnapshot.model_fields) - VOLATILE - {"windows"}))
def test_every_other_snapshot_field_changes_it(name: str) -> None:
    assert signature(_snap(**{name: OTHER[name]})) != signature(_snap())


@pytest.mark.parametrize("name", sorted(set(Kpis.model_fields) - {"window_start", "window_end"}))
def test_every_window_value_changes_it(name: str) -> None:
    window = _snap().windows["today"]
    value = "hour" if name == "window" else 7
    changed = window.model_copy(update={name: value})
    assert signature(_snap(windows={"today": changed})) != signature(_snap())


@pytest.mark.parametrize("name", sorted(TargetProgress.model_fields))
def test_every_target_value_changes_it(name: str) -> None:
    target = _snap().targets[0]
    value = {"kpi": "connects", "window": "week", "met": True}.get(name, 42)
    changed = target.model_copy(update={name: value})
    assert signature(_snap(targets=[changed])) != signature(_snap())
