"""KPI rules of design §3.2, one table of cases per rule, through both stages in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas.events import CallEvent
from schemas.roster import RosterRecord, Team
from services.aggregator.domain.calls import call_record
from services.aggregator.domain.reference import fold
from tests.unit.aggregator.events import ev, full_call
from tests.unit.aggregator.floor import Floor

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # a Tuesday
NOW = T0 + timedelta(hours=2)


def kpis(
    events: list[CallEvent], now: datetime = NOW, window: str = "today", rep: str = "r1"
) -> dict:
    floor = Floor()
    for event in events:
        floor.apply(event, now)
    return floor.snapshot(rep, now).windows[window].model_dump()  # type: ignore[index]


def test_a_full_sale_call_counts_every_kpi() -> None:
    got = kpis(full_call("c1", "r1", T0, talk=400, outcome="sale", amount="199.90"))
    assert got["dials"] == 1
    assert got["connects"] == 1
    assert got["connect_rate"] == 1.0
    assert got["talk_seconds"] == 400
    assert got["avg_talk_seconds"] == 400
    assert got["conversations"] == 1
    assert got["conversions"] == 1
    assert got["conversion_rate"] == 1.0
    assert got["revenue"] == pytest.approx(199.9)
    assert got["avg_deal"] == pytest.approx(199.9)


@pytest.mark.parametrize(
    ("talk", "conversations"),
    [(299.999, 0), (300, 1), (301, 1), (0, 0)],
)
def test_conversation_needs_300_seconds(talk: float, conversations: int) -> None:
    assert kpis(full_call("c1", "r1", T0, talk=talk))["conversations"] == conversations


def test_unanswered_call_is_a_dial_without_connect_and_rates_null_on_zero() -> None:
    got = kpis(full_call("c1", "r1", T0, talk=0))
    assert (got["dials"], got["connects"], got["connect_rate"]) == (1, 0, 0.0)
    assert got["avg_talk_seconds"] is None
    assert got["conversion_rate"] is None
    assert got["avg_deal"] is None


def test_duplicates_change_nothing() -> None:
    events = full_call("c1", "r1", T0, talk=60, outcome="sale", amount="10")
    assert kpis(events + events + events[::-1]) == kpis(events)


def test_out_of_order_equals_in_order() -> None:
    events = full_call("c1", "r1", T0, talk=60, outcome="sale", amount="10")
    assert kpis(events[::-1]) == kpis(events)


def test_outcome_correction_removes_the_conversion_and_revenue() -> None:
    events = full_call("c1", "r1", T0, talk=60, outcome="sale", amount="50")
    events.append(
        ev("call.outcome", "c1", T0 + timedelta(minutes=5), rep_id="r1", outcome="not_interested")
    )
    got = kpis(events)
    assert (got["conversions"], got["revenue"], got["connects"]) == (0, 0, 1)


def test_an_older_outcome_arriving_late_does_not_win() -> None:
    correction = ev(
        "call.outcome", "c1", T0 + timedelta(minutes=5), rep_id="r1", outcome="sale", amount="7"
    )
    stale = ev("call.outcome", "c1", T0 + timedelta(minutes=4), rep_id="r1", outcome="callback")
    got = kpis([*full_call("c1", "r1", T0, talk=60), correction, stale])
    assert (got["conversions"], got["revenue"]) == (1, 7)


def test_inbound_call_whose_rep_appears_on_answer() -> None:
    events = [
        ev("call.started", "c1", T0, direction="inbound"),
        ev("call.answered", "c1", T0 + timedelta(seconds=5), rep_id="r1"),
        ev(
            "call.ended",
            "c1",
            T0 + timedelta(seconds=65),
            end_status="completed",
            direction="inbound",
        ),
    ]
    got = kpis(events)
    assert (got["dials"], got["inbound_calls"], got["connects"], got["talk_seconds"]) == (
        0,
        1,
        1,
        60,
    )
    assert got["connect_rate"] is None  # no dials: outbound connect rate undefined


def test_self_contained_cdr_stands_alone() -> None:
    end = T0 + timedelta(minutes=6)
    cdr = ev(
        "call.ended",
        "c1",
        end,
        rep_id="r1",
        end_status="completed",
        started_at=T0,
        answered_at=T0 + timedelta(seconds=20),
        talk_seconds=340,
    )
    got = kpis([cdr])
    assert (got["dials"], got["connects"], got["talk_seconds"], got["conversations"]) == (
        1,
        1,
        340,
        1,
    )


def test_completed_end_with_talk_counts_as_connected_without_answer() -> None:
    cdr = ev(
        "call.ended",
        "c1",
        T0 + timedelta(minutes=1),
        rep_id="r1",
        end_status="completed",
        talk_seconds=30,
    )
    assert kpis([cdr])["connects"] == 1


def test_transfer_moves_the_call_to_the_last_rep() -> None:
    events = [
        ev("call.started", "c1", T0, rep_id="r1"),
        ev("call.answered", "c1", T0 + timedelta(seconds=5), rep_id="r1"),
        ev("call.ended", "c1", T0 + timedelta(seconds=65), rep_id="r2", end_status="completed"),
    ]
    assert kpis(events, rep="r1")["dials"] == 0
    assert kpis(events, rep="r2")["dials"] == 1


def test_each_fact_falls_in_its_own_window() -> None:
    # dialled 23:58 local, answered after midnight: the dial is yesterday's, the connect today's.
    start = datetime(2026, 3, 10, 23, 58, tzinfo=UTC)
    events = full_call("c1", "r1", start, ring=180, talk=60)
    now = datetime(2026, 3, 11, 0, 30, tzinfo=UTC)
    got = kpis(events, now=now)
    assert (got["dials"], got["connects"]) == (0, 1)


@pytest.mark.parametrize(
    ("tz", "call_utc", "now_utc", "window", "dials"),
    [
        # New York DST starts 2026-03-08 02:00 local: the day is 23 hours long.
        (
            "America/New_York",
            "2026-03-08T04:59",
            "2026-03-08T12:00",
            "today",
            0,
        ),  # 23:59 EST on the 7th
        (
            "America/New_York",
            "2026-03-08T05:00",
            "2026-03-08T12:00",
            "today",
            1,
        ),  # 00:00 EST on the 8th
        (
            "America/New_York",
            "2026-03-09T03:59",
            "2026-03-08T23:00",
            "today",
            1,
        ),  # 23:59 EDT on the 8th
        # Week starts Monday 00:00 local; month on the 1st.
        ("Asia/Shanghai", "2026-03-08T15:59", "2026-03-10T02:00", "week", 0),  # Sun 23:59 CST
        ("Asia/Shanghai", "2026-03-08T16:00", "2026-03-10T02:00", "week", 1),  # Mon 00:00 CST
        ("Asia/Shanghai", "2026-02-28T15:59", "2026-03-10T02:00", "month", 0),
        ("Asia/Shanghai", "2026-02-28T16:00", "2026-03-10T02:00", "month", 1),
        # Rolling windows are whole minutes ending now.
        ("UTC", "2026-03-10T10:45:59", "2026-03-10T11:00:30", "15m", 0),
        ("UTC", "2026-03-10T10:46:00", "2026-03-10T11:00:30", "15m", 1),
        ("Asia/Kolkata", "2026-03-10T04:29", "2026-03-10T05:00", "hour", 0),  # 09:59 IST
        ("Asia/Kolkata", "2026-03-10T04:30", "2026-03-10T05:00", "hour", 1),  # 10:00 IST
    ],
)
def test_window_boundaries(tz: str, call_utc: str, now_utc: str, window: str, dials: int) -> None:
    at = datetime.fromisoformat(call_utc).replace(tzinfo=UTC)
    now = datetime.fromisoformat(now_utc).replace(tzinfo=UTC)
    floor = Floor()
    floor.roster.apply(RosterRecord(team=Team(team_id="t1", timezone=tz)))
    floor.apply(ev("call.started", "c1", at, rep_id="r1", team_id="t1"), now)
    snap = floor.snapshot("r1", now)
    assert snap.windows[window].dials == dials  # type: ignore[index]
    ref = fold([ev("call.started", "c1", at, rep_id="r1")], now, {"r1": tz})
    assert ref["r1"][window]["dials"] == dials  # type: ignore[index]


def test_window_bounds_are_local_and_dst_safe() -> None:
    floor = Floor()
    floor.roster.apply(RosterRecord(team=Team(team_id="t1", timezone="America/New_York")))
    floor.apply(
        ev("call.started", "c1", datetime(2026, 3, 8, 15, tzinfo=UTC), rep_id="r1", team_id="t1"),
        NOW,
    )
    today = floor.snapshot("r1", datetime(2026, 3, 8, 16, tzinfo=UTC)).windows["today"]
    assert today.window_start == datetime(2026, 3, 8, tzinfo=ZoneInfo("America/New_York"))
    length = today.window_end.astimezone(UTC) - today.window_start.astimezone(UTC)
    assert length == timedelta(hours=23)


def test_stale_call_is_closed_as_failed_without_talk() -> None:
    floor = Floor()
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    floor.apply(ev("call.answered", "c1", T0 + timedelta(seconds=3), rep_id="r1"), T0)
    assert floor.close_stale(T0 + timedelta(hours=3)).records == []
    closed = floor.close_stale(T0 + timedelta(hours=4, seconds=1)).records
    assert [(r.end_status, r.stale_closed) for r in closed] == [("failed", True)]
    got = floor.snapshot("r1", T0 + timedelta(hours=5)).windows["today"]
    assert (got.dials, got.connects, got.talk_seconds) == (1, 1, 0)


def test_status_follows_the_latest_call() -> None:
    floor = Floor()
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    assert floor.snapshot("r1", T0).status == "ringing"
    floor.apply(ev("call.answered", "c1", T0 + timedelta(seconds=5), rep_id="r1"), T0)
    assert floor.snapshot("r1", T0).status == "on_call"
    floor.apply(
        ev("call.ended", "c1", T0 + timedelta(seconds=65), rep_id="r1", end_status="completed"), T0
    )
    assert floor.snapshot("r1", T0 + timedelta(seconds=70)).status == "wrap_up"
    assert floor.snapshot("r1", T0 + timedelta(minutes=10)).status == "idle"


def test_csat_latest_survey_wins() -> None:
    events = full_call("c1", "r1", T0, talk=60)
    events += [
        ev("survey.completed", "c1", T0 + timedelta(minutes=10), rep_id="r1", csat=2),
        ev("survey.completed", "c1", T0 + timedelta(minutes=11), rep_id="r1", csat=5),
    ]
    got = kpis(events)
    assert (got["csat_avg"], got["csat_responses"]) == (5.0, 1)


def test_a_change_that_moves_no_kpi_still_makes_a_new_record_for_history() -> None:
    floor = Floor()
    for event in full_call("c1", "r1", T0, talk=60):
        floor.apply(event, NOW)
    version = floor.calls["c1"].version
    applied = floor.apply(
        ev("call.outcome", "c1", T0 + timedelta(minutes=3), rep_id="r1", outcome="callback"), NOW
    )
    assert version == 2 * 3  # twice the events merged
    assert [(r.outcome, r.version) for r in applied.records] == [("callback", version + 2)]
    again = floor.apply(
        ev("call.outcome", "c1", T0 + timedelta(minutes=2), rep_id="r1", outcome="x"), NOW
    )
    # an older outcome changes no field, but it is a new event merged: a new version, so that
    # the last version has the same number in whatever order the events were read
    assert [(r.outcome, r.version) for r in again.records] == [("callback", version + 4)]
    assert call_record(again.records[0]).model_dump(exclude={"version"}) == call_record(
        applied.records[0]
    ).model_dump(exclude={"version"})


def test_signature_ignores_moving_rolling_bounds_but_not_values() -> None:
    from services.aggregator.domain.rep import signature

    floor = Floor()
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    a = floor.snapshot("r1", T0 + timedelta(minutes=1))
    b = floor.snapshot("r1", T0 + timedelta(minutes=2))
    assert a.windows["15m"].window_start != b.windows["15m"].window_start  # type: ignore[index]
    assert signature(a) == signature(b)
    c = floor.snapshot("r1", T0 + timedelta(minutes=16))  # the dial has left the 15m window
    assert signature(c) != signature(b)


def test_provider_agent_ids_map_to_reps_through_the_roster() -> None:
    from schemas.roster import Rep

    floor = Floor()
    floor.roster.apply(RosterRecord(rep=Rep(rep_id="alice", external_ids={"aircall": "4711"})))
    floor.apply(ev("call.started", "c1", T0, rep_id="4711"), NOW)
    floor.apply(ev("call.started", "c2", T0, rep_id="alice"), NOW)
    floor.apply(ev("call.started", "c3", T0, rep_id="9999"), NOW)  # unknown: kept as is
    assert floor.snapshot("alice", NOW).windows["today"].dials == 2  # type: ignore[index]
    assert "9999" in floor.reps
    assert "4711" not in floor.reps
    floor.roster.apply(RosterRecord(rep=Rep(rep_id="alice")))  # the mapping was removed
    assert floor.roster.aliases == {}


def test_two_starts_with_different_directions_settle_by_time_not_arrival() -> None:
    outbound = ev("call.started", "c1", T0, rep_id="r1", direction="outbound")
    inbound = ev("call.started", "c1", T0 + timedelta(seconds=1), rep_id="r1", direction="inbound")
    answered = ev("call.answered", "c1", T0 + timedelta(seconds=5), rep_id="r1")
    one, other = kpis([outbound, inbound, answered]), kpis([inbound, answered, outbound])
    assert one == other
    assert (one["dials"], one["inbound_calls"]) == (0, 1)
    assert fold([inbound, outbound, answered], NOW)["r1"]["today"]["inbound_calls"] == 1


def test_a_call_days_old_redelivered_after_a_snapshot_still_counts_once() -> None:
    # the applied versions are remembered from when they were applied, not from the call's time
    old = T0 - timedelta(days=2)
    events = full_call("c1", "r1", old, talk=60, outcome="sale", amount="5")
    floor = Floor()
    for event in events:
        floor.apply(event, NOW)
    floor.snapshot("r1", NOW)  # prunes, as every published snapshot does
    for event in events:
        floor.apply(event, NOW + timedelta(minutes=1))
    month = floor.snapshot("r1", NOW + timedelta(minutes=2)).windows["month"]
    assert (month.dials, month.connects, month.conversions) == (1, 1, 1)  # type: ignore[index]
