"""Window bounds in a team's time zone, for windows the read model holds no numbers for.

The bounds are the contract's (design §3.2), from `schemas.windows`, shared with the aggregator.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas import windows as w
from schemas.kpis import Kpis, WindowName

_ROLLING_MINUTES = w.ROLLING_MINUTES


def bounds(window: WindowName, now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the window that contains `now` (the contract's rules, schemas.windows)."""
    return w.bounds(window, now, ZoneInfo(timezone))


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
    return current_until(kpis, window, now, timezone)[0]


def current_until(
    kpis: Kpis | None, window: WindowName, now: datetime, timezone: str
) -> tuple[Kpis, datetime]:
    """`current(...)` and the time until which it stays the answer (for caches).

    Held numbers stand until they expire; empty ones until the current window ends, when the
    next window's empty numbers (other bounds) take their place.
    """
    if kpis is not None:
        expires = kpis.window_end
        if window in _ROLLING_MINUTES:
            expires += timedelta(minutes=_ROLLING_MINUTES[window])
        if now < expires:
            return kpis, expires
    empty = zero(window, now, timezone)
    return empty, empty.window_end
