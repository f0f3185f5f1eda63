"""Window bounds in a team's time zone, for windows the read model holds no numbers for.

Same rules as the aggregator (design §3.2): `today`, `week` (ISO), `month` are local calendar
periods, `hour` the current local hour, `15m` / `60m` whole minutes ending with the current one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.kpis import Kpis, WindowName

_ROLLING_MINUTES = {"15m": 15, "60m": 60}


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def bounds(window: WindowName, now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the window that contains `now`."""
    tz = ZoneInfo(timezone)
    local = now.astimezone(tz)
    today = local.date()
    if window == "today":
        return _midnight(today, tz), _midnight(today + timedelta(days=1), tz)
    if window == "week":
        monday = today - timedelta(days=today.isoweekday() - 1)
        return _midnight(monday, tz), _midnight(monday + timedelta(days=7), tz)
    if window == "month":
        first = today.replace(day=1)
        return _midnight(first, tz), _midnight((first + timedelta(days=32)).replace(day=1), tz)
    if window == "hour":
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return start.astimezone(tz), (start + timedelta(hours=1)).astimezone(tz)
    end_minute = int(now.timestamp() // 60) + 1
    start = datetime.fromtimestamp((end_minute - _ROLLING_MINUTES[window]) * 60, UTC)
    return start.astimezone(tz), datetime.fromtimestamp(end_minute * 60, UTC).astimezone(tz)


def zero(window: WindowName, now: datetime, timezone: str) -> Kpis:
    """Empty KPIs for the current window."""
    start, end = bounds(window, now, timezone)
    return Kpis(window=window, window_start=start, window_end=end)


def current(kpis: Kpis | None, window: WindowName, now: datetime, timezone: str) -> Kpis:
    """`kpis` while its window may still overlap the current one, else empty current KPIs.

    A rep with no activity gets no new snapshot, so yesterday's `today` must not show as today's:
    calendar windows and `hour` expire at their end. Rolling windows are refreshed by the
    aggregator while they hold activity; between refreshes the last numbers stand, until no minute
    of them can still be inside the window.
    """
    if kpis is None:
        return zero(window, now, timezone)
    expires = kpis.window_end
    if window in _ROLLING_MINUTES:
        expires += timedelta(minutes=_ROLLING_MINUTES[window])
    return kpis if now < expires else zero(window, now, timezone)
