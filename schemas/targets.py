"""Target progress: one KPI against its target, with the pro-rata expectation during the shift.

The one definition the aggregator (snapshots) and the API (rows it recomputes, reps without a
snapshot) share, so both serve the same `expected`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from schemas.kpis import Kpis, TargetProgress, WindowName
from schemas.roster import Shift, Target

COUNT_KPIS = frozenset(
    {
        "dials",
        "inbound_calls",
        "connects",
        "talk_seconds",
        "conversations",
        "conversions",
        "revenue",
    }
)
"""KPIs that only grow during a day: a `today` target is expected pro rata of the shift.
Rates and averages are expected at their target all along."""


def shift_bounds(shift: Shift, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """Today's shift as UTC [start, end), None on a day off (or an empty shift).

    Local wall times: on a DST day the shift is an hour shorter or longer in UTC."""
    local = now.astimezone(tz)
    if local.isoweekday() not in shift.days:
        return None
    start = datetime.combine(local.date(), shift.start, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(local.date(), shift.end, tzinfo=tz).astimezone(UTC)
    return (start, end) if end > start else None


def shift_fraction(shift: Shift, now: datetime, tz: ZoneInfo) -> float | None:
    """How much of today's shift has elapsed (0..1), None outside a shift day."""
    bounds = shift_bounds(shift, now, tz)
    if bounds is None:
        return None
    start, end = bounds
    return min(1.0, max(0.0, (now - start) / (end - start)))


def expected(kpi: str, window: WindowName, target: float, fraction: float | None) -> float | None:
    """What `kpi` should be by now: counts pro rata of the shift for `today` (None off shift
    days and for other windows), rates and averages their target."""
    if kpi not in COUNT_KPIS:
        return target
    if window == "today" and fraction is not None:
        return round(target * fraction, 3)
    return None


def target_progress(
    kpi: str, window: WindowName, target: float, kpis: Kpis, fraction: float | None
) -> TargetProgress:
    """Progress of one KPI of `kpis` (the target's window) against a target value.

    `fraction` is `shift_fraction(...)` at the time `kpis` are for; a KPI this version does not
    know (a newer writer's) reads as no value."""
    raw = getattr(kpis, kpi, None)
    value = None if raw is None else float(raw)
    return TargetProgress(
        kpi=kpi,
        window=window,
        target=target,
        value=value,
        progress=None if value is None else round(value / target, 6),
        met=value is not None and value >= target,
        expected=expected(kpi, window, target, fraction),
    )


def progress(
    targets: Iterable[Target], values: Mapping[str, Kpis], fraction: float | None
) -> list[TargetProgress]:
    """Progress of every target, each over its window's KPIs in `values`."""
    return [target_progress(t.kpi, t.window, t.value, values[t.window], fraction) for t in targets]
