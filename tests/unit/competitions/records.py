"""Call records with their facts, built the way the aggregator's rule table credits a call
(a dial at the start, a connect at the answer, talk and conversations at the end, a sale at its
outcome), for the competition tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from schemas.calls import CallFact, CallRecord


def record(
    call_id: str,
    rep_id: str,
    team_id: str | None,
    start: datetime,
    *,
    version: int = 4,
    talk: float = 0,
    sale: Decimal | None = None,
    outcome_after: timedelta = timedelta(minutes=1),
    direction: str = "outbound",
) -> CallRecord:
    """One ended call: answered 10 s after `start` when it has talk, a sale after the end."""
    facts = [CallFact(kpi="dials", at=start, value=Decimal(1))] if direction == "outbound" else []
    answered = ended = None
    if talk:
        answered = start + timedelta(seconds=10)
        ended = answered + timedelta(seconds=talk)
        facts.append(CallFact(kpi="connects", at=answered, value=Decimal(1)))
        if direction == "inbound":
            facts.append(CallFact(kpi="inbound_calls", at=answered, value=Decimal(1)))
        facts.append(CallFact(kpi="talk_seconds", at=ended, value=Decimal(str(talk))))
        if talk >= 300:
            facts.append(CallFact(kpi="conversations", at=ended, value=Decimal(1)))
    end = ended or start + timedelta(seconds=30)
    outcome_at = end + outcome_after if sale is not None else None
    if sale is not None and outcome_at is not None:
        facts.append(CallFact(kpi="conversions", at=outcome_at, value=Decimal(1)))
        if sale > 0:
            facts.append(CallFact(kpi="revenue", at=outcome_at, value=sale))
    return CallRecord(
        call_id=call_id,
        version=version,
        rep_id=rep_id,
        team_id=team_id,
        direction=direction,
        started_at=start,
        answered_at=answered,
        ended_at=end,
        end_status="completed" if talk else "no_answer",
        talk_seconds=talk,
        connected=bool(talk),
        outcome="sale" if sale is not None else None,
        outcome_at=outcome_at,
        amount=sale,
        last_event_at=outcome_at or end,
        facts=facts,
    )
