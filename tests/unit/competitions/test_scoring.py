"""Scoring and periods as tables of cases: weighted sums, minimums, targets, ties, and period
bounds across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.competitions import CompetitionIn, Period
from services.api.competitions import scoring
from services.api.competitions.periods import Schedule


def competition(**fields: Any) -> CompetitionIn:
    base: dict[str, Any] = {
        "name": "c",
        "participants": {"rep_ids": ["a"]},
        "score": [{"kpi": "conversions", "weight": 10}, {"kpi": "conversations", "weight": 1}],
        "period": {"kind": "daily"},
    }
    return CompetitionIn.model_validate(base | fields)


def test_weighted_score_minimums_targets_and_ties() -> None:
    c = competition(
        minimums=[{"kpi": "avg_talk_seconds", "at_least": 120}],
        targets={"b": 30},
        default_target=20,
    )
    totals = {
        "a": {"conversions": 2, "conversations": 1, "connects": 3, "talk_seconds": 900},
        "b": {"conversions": 1, "conversations": 11, "connects": 11, "talk_seconds": 3300},
        "c": {"conversions": 3, "conversations": 0, "connects": 3, "talk_seconds": 30},
    }
    rows = scoring.rank(c, totals, always=["d"])
    got = [(r.participant_id, r.rank, r.score, r.qualified, r.gap_to_leader) for r in rows]
    assert got == [
        ("a", 1, 21.0, True, 0.0),
        ("b", 1, 21.0, True, 0.0),
        ("c", None, 30.0, False, -9.0),
        ("d", None, 0.0, False, 21.0),  # no connects: avg talk is null, below any minimum
    ]
    assert scoring.leaders(rows) == ["a", "b"]
    assert (rows[0].target, rows[0].gap_to_target, rows[0].progress) == (20, 0.0, 1.05)
    assert (rows[1].target, rows[1].gap_to_target) == (30, 9.0)
    assert rows[0].kpis == {"conversions": 2, "conversations": 1, "avg_talk_seconds": 300.0}


@pytest.mark.parametrize(
    ("scores", "ranks"),
    [
        ([5, 3, 3, 1], [1, 2, 2, 4]),
        ([2, 2, 2], [1, 1, 1]),
        ([0], [1]),
    ],
)
def test_ties_share_a_rank(scores: list[int], ranks: list[int]) -> None:
    c = competition(score=[{"kpi": "dials"}])
    totals = {f"r{i}": {"dials": s} for i, s in enumerate(scores)}
    assert [r.rank for r in scoring.rank(c, totals)] == ranks


def test_ratio_in_score_counts_zero_when_null() -> None:
    c = competition(score=[{"kpi": "conversion_rate", "weight": 100}, {"kpi": "dials"}])
    rows = scoring.rank(c, {"a": {"dials": 4}, "b": {"dials": 1, "connects": 2, "conversions": 1}})
    assert [(r.participant_id, r.score) for r in rows] == [("b", 51.0), ("a", 4.0)]


NY = "America/New_York"


@pytest.mark.parametrize(
    ("kind", "now", "key", "start", "end"),
    [
        # spring forward 2026-03-08: a 23-hour day
        (
            "daily",
            "2026-03-08T12:00:00Z",
            "2026-03-08",
            "2026-03-08T05:00:00Z",
            "2026-03-09T04:00:00Z",
        ),
        # fall back 2026-11-01: a 25-hour day
        (
            "daily",
            "2026-11-01T12:00:00Z",
            "2026-11-01",
            "2026-11-01T04:00:00Z",
            "2026-11-02T05:00:00Z",
        ),
        (
            "weekly",
            "2026-03-08T12:00:00Z",
            "2026-W10",
            "2026-03-02T05:00:00Z",
            "2026-03-09T04:00:00Z",
        ),
        (
            "weekdays",
            "2026-03-06T12:00:00Z",
            "2026-W10",
            "2026-03-02T05:00:00Z",
            "2026-03-07T05:00:00Z",
        ),
        ("weekdays", "2026-03-07T12:00:00Z", None, None, None),
        (
            "monthly",
            "2026-03-31T12:00:00Z",
            "2026-03",
            "2026-03-01T05:00:00Z",
            "2026-04-01T04:00:00Z",
        ),
    ],
)
def test_recurring_periods_across_dst(
    kind: str, now: str, key: str | None, start: str | None, end: str | None
) -> None:
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    schedule = Schedule.of(Period.model_validate({"kind": kind}), NY, origin)
    span = schedule.at(datetime.fromisoformat(now))
    if key is None:
        assert span is None
        return
    assert span is not None
    assert (span.key, span.start.isoformat(), span.end.isoformat()) == (
        key,
        datetime.fromisoformat(start or "").isoformat(),
        datetime.fromisoformat(end or "").isoformat(),
    )


def test_one_off_and_ended_periods() -> None:
    once = Period.model_validate(
        {"kind": "once", "start": "2026-03-08T01:30:00", "end": "2026-03-08T03:30:00"}
    )
    schedule = Schedule.of(once, NY, datetime(2026, 1, 1, tzinfo=UTC))
    # 01:30 EST is 06:30Z; 03:30 EDT (after the 02:00 jump) is 07:30Z: one real hour
    span = schedule.at(datetime(2026, 3, 8, 7, tzinfo=UTC))
    assert span is not None
    assert (span.start, span.end) == (
        datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
    )
    assert schedule.ended(datetime(2026, 3, 8, 7, 29, tzinfo=UTC)) == []
    assert [s.key for s in schedule.ended(datetime(2026, 3, 8, 7, 30, tzinfo=UTC))] == ["once"]
    daily = Schedule.of(
        Period.model_validate(
            {"kind": "daily", "start": "2026-03-06T10:00:00", "end": "2026-03-09T00:00:00"}
        ),
        NY,
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    ended = daily.ended(datetime(2026, 3, 20, tzinfo=UTC))
    assert [s.key for s in ended] == ["2026-03-06", "2026-03-07", "2026-03-08"]


@pytest.mark.parametrize(
    "period",
    [
        {"kind": "once", "start": "2026-03-01T09:00:00"},
        {"kind": "once", "start": "2026-03-01T09:00:00", "end": "2026-03-01T08:00:00"},
        {"kind": "daily", "start": "2026-03-01T09:00:30"},
        {"kind": "daily", "start": "2026-03-01T09:00:00+08:00"},
        {"kind": "daily", "start": "9999-12-31T23:00:00"},  # no next day to end on
        {"kind": "once", "start": "0001-01-01T00:00:00", "end": "0001-01-02T00:00:00"},
    ],
)
def test_invalid_periods(period: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        Period.model_validate(period)
