"""Builders of RepSnapshot values for the API tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.kpis import ADDITIVE, WINDOWS, Kpis, RepSnapshot, RepStatus, TargetProgress, kpi_values
from services.api.windows import bounds

ZERO = dict.fromkeys(ADDITIVE, 0)
"""Every counter at 0: `kpis_at` fills in the counters a test does not give."""


def kpis_at(window: Any, at: datetime, timezone: str = "UTC", **totals: Any) -> Kpis:
    """KPIs of the window containing `at`, from additive totals."""
    start, end = bounds(window, at, timezone)
    return Kpis(
        window=window, window_start=start, window_end=end, **kpi_values(**{**ZERO, **totals})
    )


def make_snapshot(
    rep_id: str,
    team_id: str | None,
    as_of: datetime,
    *,
    timezone: str = "UTC",
    lag_seconds: float = 0.5,
    status: RepStatus = "idle",
    targets: list[TargetProgress] | None = None,
    **totals: Any,
) -> RepSnapshot:
    """A snapshot with the same totals in every window."""
    return RepSnapshot(
        rep_id=rep_id,
        team_id=team_id,
        rep_name=f"Rep {rep_id}",
        timezone=timezone,
        status=status,
        as_of=as_of,
        lag_seconds=lag_seconds,
        windows={w: kpis_at(w, as_of, timezone, **totals) for w in WINDOWS},
        targets=targets or [],
    )
