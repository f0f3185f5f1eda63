"""Window bounds (design §3.2, contract) in a team's time zone, DST-safe, and their buckets.

Calendar windows (`today`, `week` = ISO week, `month`) are local calendar periods. `hour` is the
current local hour. Rolling windows are whole minutes: `15m` is the current minute and the 14
before it, `60m` the current minute and the 59 before it (minute-bucket granularity).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.kpis import WindowName

ROLLING_MINUTES: dict[str, int] = {"15m": 15, "60m": 60}


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """00:00 local on `day` (zoneinfo resolves DST; midnight never falls in a gap in IANA zones
    we target, and if it does, fold=0 picks the earlier offset)."""
    return datetime.combine(day, time(0), tzinfo=tz)


def epoch_minute(at: datetime) -> int:
    """Minutes since the epoch (UTC) of an aware time."""
    return int(at.timestamp() // 60)


def local_day(at: datetime, tz: ZoneInfo) -> date:
    """The local calendar date of an instant."""
    return at.astimezone(tz).date()


def bounds(window: WindowName, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the window that contains `now`, as local aware datetimes."""
    local = now.astimezone(tz)
    today = local.date()
    if window == "today":
        return local_midnight(today, tz), local_midnight(today + timedelta(days=1), tz)
    if window == "week":
        monday = today - timedelta(days=today.isoweekday() - 1)
        return local_midnight(monday, tz), local_midnight(monday + timedelta(days=7), tz)
    if window == "month":
        first = today.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        return local_midnight(first, tz), local_midnight(nxt, tz)
    if window == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
        start_utc = start.astimezone(UTC)
        return start, (start_utc + timedelta(hours=1)).astimezone(tz)
    minutes = ROLLING_MINUTES[window]
    end_minute = epoch_minute(now) + 1
    start = datetime.fromtimestamp((end_minute - minutes) * 60, UTC)
    return start.astimezone(tz), datetime.fromtimestamp(end_minute * 60, UTC).astimezone(tz)


def day_keys(window: WindowName, now: datetime, tz: ZoneInfo) -> list[date]:
    """The local dates a calendar window covers, up to today."""
    start, _ = bounds(window, now, tz)
    today = local_day(now, tz)
    first = start.date()
    return [first + timedelta(days=i) for i in range((today - first).days + 1)]


def minute_range(window: WindowName, now: datetime, tz: ZoneInfo) -> range:
    """The epoch minutes a minute-based window (`hour`, `15m`, `60m`) covers, up to now."""
    start, _ = bounds(window, now, tz)
    return range(epoch_minute(start), epoch_minute(now) + 1)


CALENDAR: frozenset[str] = frozenset({"today", "week", "month"})
