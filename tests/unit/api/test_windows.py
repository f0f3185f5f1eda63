"""Window bounds the API computes for windows the read model holds no numbers for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from schemas.kpis import KPI_NAMES, WindowName
from services.api.routes.schemas import Metric
from services.api.windows import bounds, current, zero

NOW = datetime(2025, 3, 30, 12, 34, 56, tzinfo=UTC)  # the day Europe/Paris moves to summer time


@pytest.mark.parametrize(
    ("window", "timezone", "start", "end"),
    [
        ("today", "Europe/Paris", "2025-03-30T00:00:00+01:00", "2025-03-31T00:00:00+02:00"),
        ("week", "UTC", "2025-03-24T00:00:00+00:00", "2025-03-31T00:00:00+00:00"),
        ("month", "Asia/Shanghai", "2025-03-01T00:00:00+08:00", "2025-04-01T00:00:00+08:00"),
        ("hour", "Asia/Kolkata", "2025-03-30T18:00:00+05:30", "2025-03-30T19:00:00+05:30"),
        ("15m", "UTC", "2025-03-30T12:20:00+00:00", "2025-03-30T12:35:00+00:00"),
        ("60m", "UTC", "2025-03-30T11:35:00+00:00", "2025-03-30T12:35:00+00:00"),
    ],
)
def test_bounds(window: WindowName, timezone: str, start: str, end: str) -> None:
    got = bounds(window, NOW, timezone)
    assert got == (datetime.fromisoformat(start), datetime.fromisoformat(end))


def test_rolling_numbers_stand_until_they_cannot_overlap_the_window() -> None:
    held = zero("15m", NOW, "UTC").model_copy(update={"dials": 3})
    assert current(held, "15m", NOW + timedelta(minutes=10), "UTC").dials == 3
    assert current(held, "15m", NOW + timedelta(minutes=16), "UTC").dials == 0


def test_metric_names_are_the_kpis() -> None:
    assert set(get_args(Metric)) == set(KPI_NAMES)
