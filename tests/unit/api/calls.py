"""A small day of calls for the report tests (team time zone Asia/Shanghai)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from schemas.calls import CallRecord

ZONE = ZoneInfo("Asia/Shanghai")


def report_day() -> date:
    """Yesterday in the team's zone: inside the hourly report's last days, and complete."""
    return datetime.now(UTC).astimezone(ZONE).date() - timedelta(days=1)


def calls(rep_id: str, team_id: str) -> list[CallRecord]:
    """Five calls; the last starts the evening before and ends with a sale after midnight."""
    day = report_day()

    def at(hh: int, mm: int, ss: int = 0, days: int = 0) -> datetime:
        return datetime.combine(day + timedelta(days=days), time(hh, mm, ss), tzinfo=ZONE)

    def call(n: int, direction: str, start: datetime, **fields: object) -> CallRecord:
        return CallRecord.model_validate(
            {
                "call_id": f"{rep_id}-c{n}",
                "version": 4,
                "rep_id": rep_id,
                "team_id": team_id,
                "direction": direction,
                "started_at": start,
                "last_event_at": start + timedelta(minutes=30),
                **fields,
            }
        )

    def talk(start: datetime, answered: datetime, seconds: int) -> dict[str, object]:
        ended = answered + timedelta(seconds=seconds)
        return {
            "answered_at": answered,
            "ended_at": ended,
            "end_status": "completed",
            "talk_seconds": seconds,
            "connected": True,
        }

    return [
        call(
            1,
            "outbound",
            at(9, 10),
            **talk(at(9, 10), at(9, 10, 20), 400),
            outcome="sale",
            outcome_at=at(9, 20),
            amount=Decimal("100"),
            csat=5,
        ),
        call(2, "outbound", at(9, 40), ended_at=at(9, 41), end_status="no_answer"),
        call(3, "outbound", at(14, 5), **talk(at(14, 5), at(14, 5, 10), 60), outcome="callback"),
        call(4, "inbound", at(15, 0), **talk(at(15, 0), at(15, 0, 5), 120)),
        call(
            5,
            "outbound",
            at(23, 50, days=-1),
            **talk(at(23, 50, days=-1), at(23, 50, 30, days=-1), 840),
            outcome="sale",
            outcome_at=at(0, 10),
            amount=Decimal("50"),
        ),
    ]


EXPECTED_DAY = {
    "dials": 3,
    "inbound_calls": 1,
    "connects": 3,
    "connect_rate": 0.666667,
    "talk_seconds": 1420.0,
    "conversations": 2,
    "conversions": 2,
    "revenue": 150.0,
    "avg_deal": 75.0,
    "csat_avg": 5.0,
    "csat_responses": 1,
}
EXPECTED_HOURS = {9: (2, 1), 14: (1, 1), 23: (1, 1)}
"""Local hour -> (dials, connects); the inbound call is not a dial."""
