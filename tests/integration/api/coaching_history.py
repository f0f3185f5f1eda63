"""Generated call history for the coaching tests: weeks of calls of two teams in two time zones
(New York crosses the DST change of 2026-03-08), as events, the call records the aggregator's
call assembly makes of them, and the plan each call was made from (for the reference sums that
the fold does not give: weekday x hour cells and lost dials)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from schemas.calls import CallRecord
from schemas.events import CallEvent, parse_event
from services.aggregator.domain.calls import CallState, Rules, apply_event, call_record

RULES = Rules()
TEAMS = {"ny": "America/New_York", "sh": "Asia/Shanghai"}
FIRST_DAY, DAYS = date(2026, 2, 16), 35  # Monday 16 Feb .. Sunday 22 Mar: the DST change inside
CAMPAIGNS = ("spring", "renewal", None)
STATUSES = ("no_answer", "busy", "voicemail", "failed")
OUTCOMES = ("sale", "not_interested", "callback", "wrong_number", None)


@dataclass
class PlannedCall:
    """One call as planned: what the reference sums read directly."""

    call_id: str
    rep_id: str
    team_id: str
    campaign_id: str | None
    inbound: bool
    started: datetime
    answered: datetime | None
    ended: datetime
    talk: float
    status: str
    outcome: str | None
    outcome_at: datetime | None
    amount: Decimal | None
    csat: int | None
    events: list[CallEvent] = field(default_factory=list)


@dataclass
class History:
    """Events, records and plans of a generated floor, with its roster."""

    teams: dict[str, str]
    reps: dict[str, str]
    """rep -> team"""
    calls: list[PlannedCall]

    @property
    def events(self) -> list[CallEvent]:
        return [e for c in self.calls for e in c.events]

    def records(self) -> list[CallRecord]:
        """The newest record of every call, as the aggregator's call assembly makes it."""
        out = []
        for call in self.calls:
            state: CallState | None = None
            for event in call.events:
                state = apply_event(state, event, RULES).state
            assert state is not None
            out.append(call_record(state))
        return out

    def timezones(self) -> dict[str, str]:
        """rep -> its team's time zone."""
        return {rep: self.teams[team] for rep, team in self.reps.items()}


def _event(kind: str, call: PlannedCall, at: datetime, n: int, **fields: Any) -> CallEvent:
    return parse_event(
        {
            "type": kind,
            "event_id": f"{call.call_id}-{n}",
            "call_id": call.call_id,
            "occurred_at": at.isoformat(),
            "rep_id": call.rep_id,
            "team_id": call.team_id,
            "campaign_id": call.campaign_id,
            **fields,
        }
    )


def _events(call: PlannedCall) -> Iterator[CallEvent]:
    direction = "inbound" if call.inbound else "outbound"
    yield _event("call.started", call, call.started, 0, direction=direction)
    if call.answered is not None:
        yield _event("call.answered", call, call.answered, 1)
    yield _event(
        "call.ended",
        call,
        call.ended,
        2,
        direction=direction,
        end_status=call.status,
        talk_seconds=call.talk if call.answered is not None else None,
    )
    if call.outcome is not None and call.outcome_at is not None:
        amount = None if call.amount is None else str(call.amount)
        yield _event("call.outcome", call, call.outcome_at, 3, outcome=call.outcome, amount=amount)
    if call.csat is not None:
        yield _event("survey.completed", call, call.ended + timedelta(minutes=5), 4, csat=call.csat)


def _call(rng: random.Random, n: int, rep: str, team: str, start: datetime) -> PlannedCall:
    inbound = rng.random() < 0.1
    # Each rep has its own pick-up rate, so the team has a spread to coach on.
    answered_p = 0.2 + (sum(map(ord, rep)) % 7) / 10
    answered = start + timedelta(seconds=rng.randint(3, 40)) if rng.random() < answered_p else None
    talk = rng.choice([15.0, 90.5, 240.0, 300.0, 420.25, 900.0]) if answered else 0.0
    ended = (answered or start) + timedelta(seconds=talk or rng.randint(10, 40))
    outcome = rng.choice(OUTCOMES) if answered else rng.choice([None, None, "callback"])
    outcome_at = ended + timedelta(seconds=rng.choice([5, 60, 1800])) if outcome else None
    sale = outcome == "sale"
    call = PlannedCall(
        call_id=f"{rep}-c{n}",
        rep_id=rep,
        team_id=team,
        campaign_id=rng.choice(CAMPAIGNS),
        inbound=inbound,
        started=start,
        answered=answered,
        ended=ended,
        talk=talk,
        status="completed" if answered else rng.choice(STATUSES),
        outcome=outcome,
        outcome_at=outcome_at,
        amount=Decimal(rng.choice(["99", "250.5", "1200"])) if sale else None,
        csat=rng.randint(1, 5) if answered and rng.random() < 0.3 else None,
    )
    call.events = list(_events(call))
    return call


def generate(
    prefix: str, *, reps_per_team: int = 4, calls_per_day: int = 8, seed: int = 7
) -> History:
    """Every rep calls on most days between 08:00 and 20:00 local, over DAYS days."""
    rng = random.Random(seed)
    teams = {f"{prefix}-{t}": tz for t, tz in TEAMS.items()}
    reps = {f"{team}-r{i}": team for team in teams for i in range(reps_per_team)}
    calls: list[PlannedCall] = []
    for rep, team in reps.items():
        zone = ZoneInfo(teams[team])
        for offset in range(DAYS):
            day = FIRST_DAY + timedelta(days=offset)
            for _ in range(rng.randint(0, calls_per_day)):
                local = datetime.combine(day, time(8), tzinfo=zone) + timedelta(
                    seconds=rng.randint(0, 12 * 3600)
                )
                calls.append(_call(rng, len(calls), rep, team, local))
    return History(teams, reps, calls)
