"""One simulated call: the events a phone system and a CRM send for it, drawn from a rep's RNG."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from schemas.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOutcome,
    CallStarted,
    Direction,
    EndStatus,
    SurveyCompleted,
)

if TYPE_CHECKING:
    from services.simulator.floor import FloorConfig

UNANSWERED: tuple[EndStatus, ...] = ("no_answer", "busy", "voicemail", "failed")
UNANSWERED_WEIGHTS = (0.62, 0.12, 0.22, 0.04)
NO_SALE = ("callback", "not_interested")
NO_SALE_WEIGHTS = (0.3, 0.7)
MAX_TALK_SECONDS = 3 * 3600.0


@dataclass(frozen=True, slots=True)
class Rep:
    """One rep's fixed traits: who, where, and skill multipliers around the floor's averages."""

    rep_id: str
    team_id: str
    tz: ZoneInfo
    line: str
    dial: float
    connect: float
    convert: float
    talk: float


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """A call's events, and when the rep is free for the next dial."""

    events: tuple[CallEvent, ...]
    busy_until: datetime


@dataclass(frozen=True, slots=True)
class _Call:
    """What every event of one call carries."""

    call_id: str
    rep: Rep
    campaign_id: str | None


def connect_probability(config: FloorConfig, rep: Rep, at: datetime) -> float:
    """Chance that this rep's dial at `at` is answered: the local-hour curve times rep skill."""
    return min(0.95, config.connect_by_hour[at.astimezone(rep.tz).hour] * rep.connect)


def _seconds(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(milliseconds=round(rng.uniform(low, high) * 1000))


def _customer(rng: random.Random) -> str:
    return f"+1555{rng.randrange(10**7):07d}"


def place_call(
    config: FloorConfig, rep: Rep, rng: random.Random, at: datetime, number: int
) -> PlacedCall:
    """The events of the rep's `number`-th call, starting at `at`."""
    call_id = f"{config.run_id}-{rep.rep_id}-{number:05d}"
    if rng.random() < config.inbound_share:
        # An inbound call rings in a queue; its rep is known only once someone answers.
        call = _Call(call_id, rep, None)
        started = CallStarted(
            event_id=f"{call_id}-s",
            occurred_at=at,
            call_id=call_id,
            direction="inbound",
            from_=_customer(rng),
            to=rep.line,
        )
        answered = at + _seconds(rng, 3.0, 40.0)
        events, busy_until = _conversation(config, rng, call, answered, "inbound")
        return PlacedCall(events=(started, *events), busy_until=busy_until)
    call = _Call(call_id, rep, rng.choice(config.campaigns) if config.campaigns else None)
    started = CallStarted(
        event_id=f"{call_id}-s",
        occurred_at=at,
        call_id=call_id,
        rep_id=rep.rep_id,
        team_id=rep.team_id,
        campaign_id=call.campaign_id,
        direction="outbound",
        from_=rep.line,
        to=_customer(rng),
    )
    if rng.random() < connect_probability(config, rep, at):
        answered = at + _seconds(rng, *config.ring_seconds)
        events, busy_until = _conversation(config, rng, call, answered, "outbound")
        return PlacedCall(events=(started, *events), busy_until=busy_until)
    (status,) = rng.choices(UNANSWERED, UNANSWERED_WEIGHTS)
    quick = status in ("busy", "failed")
    ended = at + (_seconds(rng, 1.0, 4.0) if quick else _seconds(rng, *config.ring_seconds))
    end = CallEnded(
        event_id=f"{call_id}-e",
        occurred_at=ended,
        call_id=call_id,
        rep_id=rep.rep_id,
        team_id=rep.team_id,
        campaign_id=call.campaign_id,
        direction="outbound",
        end_status=status,
    )
    return PlacedCall(events=(started, end), busy_until=ended)


def _conversation(
    config: FloorConfig, rng: random.Random, call: _Call, answered: datetime, direction: Direction
) -> tuple[list[CallEvent], datetime]:
    """Answer, end, the outcome after wrap-up, maybe a correction and a survey; free time."""
    rep = call.rep
    talk = rng.lognormvariate(math.log(config.talk_median_seconds * rep.talk), config.talk_sigma)
    talk_ms = round(min(MAX_TALK_SECONDS, max(2.0, talk)) * 1000)
    ended = answered + timedelta(milliseconds=talk_ms)
    who = {"call_id": call.call_id, "rep_id": rep.rep_id, "team_id": rep.team_id}
    events: list[CallEvent] = [
        CallAnswered(
            event_id=f"{call.call_id}-a", occurred_at=answered, campaign_id=call.campaign_id, **who
        ),
        CallEnded(
            event_id=f"{call.call_id}-e",
            occurred_at=ended,
            campaign_id=call.campaign_id,
            direction=direction,
            end_status="completed",
            talk_seconds=talk_ms / 1000,
            **who,
        ),
    ]
    decided = ended + _seconds(rng, *config.wrap_up_seconds)
    sale = rng.random() < min(0.9, config.conversion_rate * rep.convert)
    events.append(_outcome(config, rng, call, f"{call.call_id}-o1", decided, sale))
    if rng.random() < config.correction_rate:
        # the CRM record changes later: a sale is cancelled, or a callback closes
        later = decided + _seconds(rng, 60.0, 1200.0)
        events.append(_outcome(config, rng, call, f"{call.call_id}-o2", later, not sale))
    if rng.random() < config.csat_rate:
        (score,) = rng.choices(range(1, 6), config.csat_weights)
        surveyed = ended + _seconds(rng, 30.0, 900.0)
        events.append(
            SurveyCompleted(event_id=f"{call.call_id}-v", occurred_at=surveyed, csat=score, **who)
        )
    return events, decided


def _outcome(
    config: FloorConfig, rng: random.Random, call: _Call, event_id: str, at: datetime, sale: bool
) -> CallOutcome:
    who = {"call_id": call.call_id, "rep_id": call.rep.rep_id, "team_id": call.rep.team_id}
    if not sale:
        (outcome,) = rng.choices(NO_SALE, NO_SALE_WEIGHTS)
        return CallOutcome(event_id=event_id, occurred_at=at, outcome=outcome, **who)
    deal = rng.lognormvariate(math.log(config.deal_median), config.deal_sigma)
    return CallOutcome(
        event_id=event_id,
        occurred_at=at,
        outcome="sale",
        amount=Decimal(round(deal * 100)) / 100,
        currency=config.currency,
        **who,
    )
