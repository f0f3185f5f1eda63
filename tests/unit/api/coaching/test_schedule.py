"""When digests are due: team-local times, the daily one each day, the weekly one on its day."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from schemas.coaching import DigestSettings
from services.api.coaching.schedule import due

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("local", "settings", "expected"),
    [
        (datetime(2026, 3, 11, 17, 59, 59, tzinfo=NY), {}, []),
        (datetime(2026, 3, 11, 18, 0, tzinfo=NY), {}, ["daily:2026-03-11"]),
        (
            datetime(2026, 3, 13, 18, 0, tzinfo=NY),
            {},
            ["daily:2026-03-13", "weekly:2026-W11"],
        ),
        (datetime(2026, 3, 8, 23, 0, tzinfo=NY), {"daily_at": "22:30"}, ["daily:2026-03-08"]),
        (datetime(2026, 3, 13, 18, 0, tzinfo=NY), {"weekly": False}, ["daily:2026-03-13"]),
        (datetime(2026, 3, 13, 18, 0, tzinfo=NY), {"enabled": False}, []),
        (
            datetime(2026, 3, 16, 9, 0, tzinfo=NY),
            {"daily_at": "08:00", "weekly_day": 1, "weekly_at": "08:30"},
            ["daily:2026-03-16", "weekly:2026-W12"],
        ),
    ],
)
def test_due_digests(local: datetime, settings: dict[str, object], expected: list[str]) -> None:
    got = due(DigestSettings.model_validate(settings), local)
    assert [f"{d.kind}:{d.key}" for d in got] == expected
    for d in got:
        assert d.at.tzinfo is NY
        assert d.at.time() in (time(18), time(22, 30), time(8), time(8, 30))
