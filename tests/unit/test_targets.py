"""Target progress (schemas.targets): one definition for the aggregator's snapshots and the API."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas.kpis import Kpis, TargetProgress, WindowName
from schemas.roster import Shift, Target
from schemas.targets import progress, shift_bounds, shift_fraction
from services.api.readmodel import ReadModel
from tests.unit.api.snapshots import kpis_at, make_snapshot

TUESDAY_NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)
SHIFT = Shift(days=[1, 2, 3, 4, 5], start=time(9), end=time(17))
UTC_ZONE = ZoneInfo("UTC")


def kpis(window: WindowName = "today", **totals: float) -> Kpis:
    return kpis_at(window, TUESDAY_NOON, "UTC", **totals)


@pytest.mark.parametrize(
    ("target", "values", "fraction", "expected"),
    [
        pytest.param(
            Target(kpi="dials", value=80),
            {"dials": 20},
            0.375,
            TargetProgress(
                kpi="dials",
                window="today",
                target=80,
                value=20,
                progress=0.25,
                met=False,
                expected=30,
            ),
            id="count-today-in-shift: pro rata",
        ),
        pytest.param(
            Target(kpi="dials", value=80),
            {"dials": 20},
            None,
            TargetProgress(
                kpi="dials",
                window="today",
                target=80,
                value=20,
                progress=0.25,
                met=False,
                expected=None,
            ),
            id="count-today-day-off: no expectation",
        ),
        pytest.param(
            Target(kpi="dials", value=80),
            {"dials": 90},
            1.0,
            TargetProgress(
                kpi="dials",
                window="today",
                target=80,
                value=90,
                progress=1.125,
                met=True,
                expected=80,
            ),
            id="count-today-after-shift: met, whole target expected",
        ),
        pytest.param(
            Target(kpi="talk_seconds", value=3600),
            {"connects": 1, "talk_seconds": 1800},
            0.0,
            TargetProgress(
                kpi="talk_seconds",
                window="today",
                target=3600,
                value=1800,
                progress=0.5,
                met=False,
                expected=0,
            ),
            id="count-today-before-shift: nothing expected yet",
        ),
        pytest.param(
            Target(kpi="conversions", window="week", value=20),
            {"conversions": 5},
            0.5,
            TargetProgress(
                kpi="conversions",
                window="week",
                target=20,
                value=5,
                progress=0.25,
                met=False,
                expected=None,
            ),
            id="count-other-window: no expectation",
        ),
        pytest.param(
            Target(kpi="connect_rate", value=0.25),
            {"dials": 10, "connects": 3},
            0.5,
            TargetProgress(
                kpi="connect_rate",
                window="today",
                target=0.25,
                value=0.3,
                progress=1.2,
                met=True,
                expected=0.25,
            ),
            id="ratio: its target all along",
        ),
        pytest.param(
            Target(kpi="avg_talk_seconds", value=120),
            {},
            None,
            TargetProgress(
                kpi="avg_talk_seconds",
                window="today",
                target=120,
                value=None,
                progress=None,
                met=False,
                expected=120,
            ),
            id="null value: no progress, not met",
        ),
    ],
)
def test_progress(
    target: Target,
    values: dict[str, float],
    fraction: float | None,
    expected: TargetProgress,
) -> None:
    got = progress([target], {target.window: kpis(target.window, **values)}, fraction)
    assert got == [expected]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("zone", "shift", "now", "bounds"),
    [
        pytest.param(
            "UTC", SHIFT, TUESDAY_NOON, (utc(2026, 3, 10, 9), utc(2026, 3, 10, 17)), id="utc"
        ),
        pytest.param(
            "Asia/Shanghai",
            SHIFT,
            utc(2026, 3, 10, 16, 30),  # Wednesday 00:30 in Shanghai
            (utc(2026, 3, 11, 1), utc(2026, 3, 11, 9)),
            id="local day, not the UTC day",
        ),
        pytest.param(
            "Europe/Berlin",
            Shift(days=EVERY_DAY, start=time(1), end=time(5)),
            utc(2026, 3, 29, 2),
            (utc(2026, 3, 29, 0), utc(2026, 3, 29, 3)),  # 01:00 CET to 05:00 CEST: 3 h
            id="spring forward: a short shift",
        ),
        pytest.param(
            "Europe/Berlin",
            Shift(days=EVERY_DAY, start=time(1), end=time(5)),
            utc(2026, 10, 25, 2),
            (utc(2026, 10, 24, 23), utc(2026, 10, 25, 4)),  # 01:00 CEST to 05:00 CET: 5 h
            id="fall back: a long shift",
        ),
        pytest.param(
            "America/New_York",
            Shift(days=EVERY_DAY, start=time(9), end=time(17)),
            utc(2026, 3, 8, 15),
            (utc(2026, 3, 8, 13), utc(2026, 3, 8, 21)),  # EDT from 03:00 that morning
            id="spring forward before the shift: EDT all shift",
        ),
        pytest.param("UTC", SHIFT, utc(2026, 3, 15, 12), None, id="day off (Sunday)"),
        pytest.param(
            "UTC", Shift(start=time(18), end=time(9)), TUESDAY_NOON, None, id="empty shift"
        ),
    ],
)
def test_shift_bounds(
    zone: str, shift: Shift, now: datetime, bounds: tuple[datetime, datetime] | None
) -> None:
    assert shift_bounds(shift, now, ZoneInfo(zone)) == bounds


@pytest.mark.parametrize(
    ("now", "fraction"),
    [
        (utc(2026, 3, 10, 8), 0.0),  # before the shift
        (TUESDAY_NOON, 0.375),
        (utc(2026, 3, 10, 18), 1.0),  # after it: the whole day's share
        (utc(2026, 3, 14, 12), None),  # Saturday
    ],
)
def test_shift_fraction(now: datetime, fraction: float | None) -> None:
    assert shift_fraction(SHIFT, now, UTC_ZONE) == fraction


def test_shift_fraction_on_a_dst_day_counts_real_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    shift = Shift(days=EVERY_DAY, start=time(1), end=time(5))
    # 3 real hours from 01:00 CET to 05:00 CEST; one has passed at 03:00 CEST (01:00 UTC).
    assert shift_fraction(shift, utc(2026, 3, 29, 1), berlin) == pytest.approx(1 / 3)


def test_the_api_restarts_progress_of_an_ended_window_with_the_same_rules() -> None:
    """After midnight the API serves yesterday's targets against an empty `today`: a rate keeps
    its target as expected; a count's pro-rata share needs the shift (the aggregator's next
    snapshot brings it)."""
    yesterday = TUESDAY_NOON - timedelta(days=1)
    held = progress(
        [Target(kpi="dials", value=80), Target(kpi="connect_rate", value=0.25)],
        {"today": kpis_at("today", yesterday, dials=40, connects=10)},
        0.375,
    )
    rm = ReadModel(clock=lambda: TUESDAY_NOON)
    rm.apply(make_snapshot("a", "t1", yesterday, dials=40, connects=10, targets=held))
    view = rm.rep("a", "today")
    assert view is not None
    assert view.targets == progress(
        [Target(kpi="dials", value=80), Target(kpi="connect_rate", value=0.25)],
        {"today": kpis("today")},
        None,
    )
    assert [t.expected for t in view.targets] == [None, 0.25]
    same_day = ReadModel(clock=lambda: yesterday + timedelta(minutes=1))
    same_day.apply(make_snapshot("a", "t1", yesterday, dials=40, connects=10, targets=held))
    current = same_day.rep("a", "today")
    assert current is not None
    assert current.targets == held  # the aggregator's, `expected` included
