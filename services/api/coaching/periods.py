"""Scorecard periods: local calendar days, ISO weeks and months, as the live windows bound them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas import windows
from schemas.coaching import Period, PeriodOut
from schemas.kpis import WindowName

WINDOW: dict[Period, WindowName] = {"day": "today", "week": "week", "month": "month"}
"""The live window whose calendar bounds a period follows (and whose targets apply to it)."""


@dataclass(frozen=True, slots=True)
class Span:
    """A period containing a local date, and the period before it: [start, end) each."""

    period: Period
    day: date
    timezone: str
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime

    def out(self) -> PeriodOut:
        """As the API shows it."""
        return PeriodOut(
            period=self.period,
            date=self.day,
            timezone=self.timezone,
            start=self.start,
            end=self.end,
            previous_start=self.previous_start,
            previous_end=self.previous_end,
        )


def span(period: Period, day: date, timezone: str) -> Span:
    """The period of `day` in `timezone` and the one before it (DST-safe local midnights)."""
    zone = ZoneInfo(timezone)
    noon = datetime.combine(day, time(12), tzinfo=zone)
    start, end = windows.bounds(WINDOW[period], noon, zone)
    before = start.date() - timedelta(days=1)
    previous_start, previous_end = windows.bounds(
        WINDOW[period], datetime.combine(before, time(12), tzinfo=zone), zone
    )
    return Span(period, day, timezone, start, end, previous_start, previous_end)


def last_weeks(day: date, weeks: int, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the `weeks` * 7 local days ending with `day` (a heatmap's range)."""
    zone = ZoneInfo(timezone)
    first = day - timedelta(days=weeks * 7 - 1)
    return windows.local_midnight(first, zone), windows.local_midnight(
        day + timedelta(days=1), zone
    )
