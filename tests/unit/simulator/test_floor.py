"""The floor model: deterministic, time-ordered, complete, and statistically plausible."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest

from schemas.events import (
    CallAnswered,
    CallEnded,
    CallOutcome,
    CallStarted,
    SurveyCompleted,
    event_to_json,
    parse_event,
)
from services.simulator.floor import FloorConfig, ShiftHours, generate, roster, stream

END = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # a Tuesday
ALL_DAY = FloorConfig(reps=12, teams=3, shift=None, timezones=("UTC",))


def test_same_seed_gives_the_identical_log() -> None:
    first = generate(ALL_DAY, END - timedelta(hours=2), END)
    again = generate(ALL_DAY, END - timedelta(hours=2), END)
    assert first
    assert [event_to_json(e) for e in first] == [event_to_json(e) for e in again]


def test_another_seed_gives_another_log() -> None:
    first = generate(ALL_DAY, END - timedelta(hours=2), END)
    other = generate(replace(ALL_DAY, seed=2), END - timedelta(hours=2), END)
    assert [event_to_json(e) for e in first] != [event_to_json(e) for e in other]


def test_the_log_is_time_ordered_with_unique_ids_and_round_trips() -> None:
    events = generate(ALL_DAY, END - timedelta(hours=3), END)
    assert all(a.occurred_at <= b.occurred_at for a, b in pairwise(events))
    assert all(END - timedelta(hours=3) <= e.occurred_at < END for e in events)
    assert len({e.event_id for e in events}) == len(events)
    assert all(parse_event(e.model_dump(by_alias=True)) == e for e in events[:500])


def test_generate_is_the_stream_cut_at_the_end() -> None:
    start = END - timedelta(hours=1)
    log = generate(ALL_DAY, start, END)
    assert list(islice(stream(ALL_DAY, start), len(log) + 1))[: len(log)] == log
    assert next(islice(stream(ALL_DAY, start), len(log), None)).occurred_at >= END


def test_roster_ids_and_sizes() -> None:
    teams = roster(FloorConfig(reps=7, teams=3, timezones=("UTC", "Asia/Tokyo")))
    assert [t.team_id for t in teams] == ["team-1", "team-2", "team-3"]
    assert [t.rep_ids for t in teams] == [
        ("rep-1-01", "rep-1-02", "rep-1-03"),
        ("rep-2-01", "rep-2-02"),
        ("rep-3-01", "rep-3-02"),
    ]
    assert [t.timezone for t in teams] == ["UTC", "Asia/Tokyo", "UTC"]


def test_every_call_is_complete_and_consistent() -> None:
    events = generate(ALL_DAY, END - timedelta(hours=4), END - timedelta(hours=1))
    calls: dict[str, list[object]] = {}
    for event in events:
        calls.setdefault(event.call_id, []).append(event)
    closed = [evs for evs in calls.values() if any(isinstance(e, CallEnded) for e in evs)]
    assert len(closed) > 100
    for evs in closed:
        kinds = Counter(type(e).__name__ for e in evs)
        assert kinds["CallStarted"] == 1, evs
        assert kinds["CallEnded"] == 1, evs
        end = next(e for e in evs if isinstance(e, CallEnded))
        answered = any(isinstance(e, CallAnswered) for e in evs)
        assert answered == (end.end_status == "completed")
        if not answered:
            assert not any(isinstance(e, CallOutcome | SurveyCompleted) for e in evs)
    sales = [e for e in events if isinstance(e, CallOutcome) and e.outcome == "sale"]
    assert sales
    assert all(e.amount is not None and e.amount > 0 for e in sales)
    assert {e.csat for e in events if isinstance(e, SurveyCompleted)} <= {1, 2, 3, 4, 5}


def _outbound_connect_rate(config: FloorConfig, start: datetime, hours: int) -> float:
    events = generate(config, start, start + timedelta(hours=hours))
    dialled = {
        e.call_id for e in events if isinstance(e, CallStarted) and e.direction == "outbound"
    }
    answered = {e.call_id for e in events if isinstance(e, CallAnswered)} & dialled
    return len(answered) / len(dialled)


def test_connect_rate_follows_the_local_hour_curve() -> None:
    config = replace(ALL_DAY, reps=60, timezones=("America/New_York",))
    day = datetime(2026, 3, 10, tzinfo=ZoneInfo("America/New_York"))
    night = _outbound_connect_rate(config, day.replace(hour=2), 2)
    morning = _outbound_connect_rate(config, day.replace(hour=10), 2)
    evening = _outbound_connect_rate(config, day.replace(hour=17), 2)
    assert night < 0.08
    assert 0.18 < morning < 0.42
    assert 0.18 < evening < 0.42


def test_rates_are_roughly_what_the_config_says() -> None:
    config = replace(ALL_DAY, reps=60, inbound_share=0.2, conversion_rate=0.25, csat_rate=0.5)
    events = generate(config, END - timedelta(hours=6), END)
    starts = [e for e in events if isinstance(e, CallStarted)]
    inbound = sum(e.direction == "inbound" for e in starts) / len(starts)
    assert 0.15 < inbound < 0.25
    first_outcomes = [e for e in events if isinstance(e, CallOutcome) and e.event_id.endswith("o1")]
    sold = sum(e.outcome == "sale" for e in first_outcomes) / len(first_outcomes)
    assert 0.18 < sold < 0.33
    surveyed = sum(isinstance(e, SurveyCompleted) for e in events) / len(first_outcomes)
    assert 0.4 < surveyed < 0.6
    talks = sorted(
        e.talk_seconds or 0 for e in events if isinstance(e, CallEnded) and e.talk_seconds
    )
    assert 90 < talks[len(talks) // 2] < 250  # median around the configured 150 s


def test_reps_dial_only_inside_their_shift() -> None:
    config = FloorConfig(
        reps=20, teams=2, timezones=("Europe/Berlin", "Asia/Shanghai"), shift=ShiftHours()
    )
    zones = {t.team_id: ZoneInfo(t.timezone) for t in roster(config)}
    events = generate(config, datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))
    dials = [e for e in events if isinstance(e, CallStarted) and e.direction == "outbound"]
    assert dials
    for dial in dials:
        assert dial.team_id is not None
        local = dial.occurred_at.astimezone(zones[dial.team_id])
        assert local.isoweekday() <= 5, local  # 2026-03-07/08 is a weekend
        assert time(9) <= local.time() < time(18), local


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"teams": 0}, "teams"),
        ({"conversion_rate": 1.5}, "conversion_rate"),
        ({"connect_by_hour": (0.1,)}, "24"),
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FloorConfig(**kwargs)  # type: ignore[arg-type]
