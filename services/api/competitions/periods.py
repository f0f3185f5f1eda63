"""Competition periods in a time zone, DST-correct: one-off spans to the minute and recurring
daily, weekly (Monday-Sunday), weekdays (Monday-Friday) and monthly periods.

Recurring bounds are the KPI windows' own (`schemas.windows.bounds`: local midnights), so a daily
competition counts exactly what the `today` window counts. Bounds are kept in UTC: two aware
datetimes sharing a tzinfo compare by wall time, which is wrong in the repeated autumn hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas import windows
from schemas.competitions import Period, PeriodKind, PeriodOut

MAX_SPANS = 1000
"""Most ended periods looked at in one call (about three years of daily periods)."""


@dataclass(frozen=True, slots=True)
class Span:
    """One period: a key and [start, end) in UTC."""

    key: str
    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        """True when the instant `at` falls in [start, end)."""
        return self.start <= at.astimezone(UTC) < self.end

    def out(self, zone: ZoneInfo) -> PeriodOut:
        """The period as served, its bounds in local time."""
        return PeriodOut(
            key=self.key, start=self.start.astimezone(zone), end=self.end.astimezone(zone)
        )


def local(wall: datetime, zone: ZoneInfo) -> datetime:
    """A local wall-clock time as a UTC instant (fold 0: the first of a repeated time)."""
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _utc(bounds: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    return bounds[0].astimezone(UTC), bounds[1].astimezone(UTC)


def recurring(kind: PeriodKind, at: datetime, zone: ZoneInfo) -> Span | None:
    """The period of a recurring kind that contains `at` (None on a weekend for `weekdays`)."""
    day = at.astimezone(zone).date()
    if kind == "daily":
        start, end = _utc(windows.bounds("today", at, zone))
        return Span(day.isoformat(), start, end)
    if kind == "monthly":
        start, end = _utc(windows.bounds("month", at, zone))
        return Span(f"{day.year:04d}-{day.month:02d}", start, end)
    year, week, _ = day.isocalendar()
    start, end = _utc(windows.bounds("week", at, zone))
    key = f"{year:04d}-W{week:02d}"
    if kind == "weekdays":
        monday = day - timedelta(days=day.isoweekday() - 1)
        end = windows.local_midnight(monday + timedelta(days=5), zone).astimezone(UTC)
        if at.astimezone(UTC) >= end:
            return None
    return Span(key, start, end)


def _next(kind: PeriodKind, cursor: datetime, zone: ZoneInfo) -> Span:
    """The period containing `cursor`, else (a weekend of `weekdays`) the next one."""
    span = recurring(kind, cursor, zone)
    if span is not None:
        return span
    day = cursor.astimezone(zone).date()
    monday = day + timedelta(days=8 - day.isoweekday())
    found = recurring(kind, windows.local_midnight(monday, zone), zone)
    assert found is not None  # a Monday is a weekday
    return found


@dataclass(frozen=True, slots=True)
class Schedule:
    """A competition's periods: its `Period` in its zone, from `origin` (its start, else when it
    was created) on."""

    period: Period
    zone: ZoneInfo
    origin: datetime

    @classmethod
    def of(cls, period: Period, timezone: str, created_at: datetime) -> Schedule:
        """The schedule of a stored competition."""
        zone = ZoneInfo(timezone)
        origin = local(period.start, zone) if period.start is not None else created_at
        return cls(period, zone, origin.astimezone(UTC))

    @property
    def stop(self) -> datetime | None:
        """No period begins at or after this instant."""
        return None if self.period.end is None else local(self.period.end, self.zone)

    def _once(self) -> Span:
        stop = self.stop
        assert stop is not None  # validated: a one-off has an end
        return Span("once", self.origin, stop)

    def _allowed(self, span: Span) -> bool:
        stop = self.stop
        return span.end > self.origin and (stop is None or span.start < stop)

    def at(self, now: datetime) -> Span | None:
        """The period running at `now`, or None (before, after, or between periods)."""
        if self.period.kind == "once":
            span = self._once()
            return span if span.contains(now) else None
        found = recurring(self.period.kind, now, self.zone)
        return found if found is not None and self._allowed(found) else None

    def ended(self, now: datetime, since: datetime | None = None) -> list[Span]:
        """Periods that ended by `now` (and after `since`, when given), oldest first."""
        now = now.astimezone(UTC)
        if self.period.kind == "once":
            span = self._once()
            ok = span.end <= now and (since is None or span.end > since)
            return [span] if ok else []
        cursor = self.origin if since is None else max(self.origin, since)
        spans: list[Span] = []
        while len(spans) < MAX_SPANS:
            span = _next(self.period.kind, cursor, self.zone)
            if span.end > now or not self._allowed(span):
                break
            if since is None or span.end > since:
                spans.append(span)
            cursor = span.end
        return spans
