"""Builders for v1 events in tests."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from typing import Any

from schemas.events import CallEvent, parse_event

_ids = count()


def ev(type_: str, call_id: str, at: datetime, **fields: Any) -> CallEvent:
    """One event with a fresh event_id (pass event_id= to fix it)."""
    fields.setdefault("event_id", f"e{next(_ids)}")
    return parse_event({"type": type_, "call_id": call_id, "occurred_at": at, **fields})


def full_call(
    call_id: str,
    rep: str,
    start: datetime,
    *,
    ring: float = 10,
    talk: float = 0,
    outcome: str | None = None,
    amount: str | None = None,
    direction: str = "outbound",
) -> list[CallEvent]:
    """started → (answered) → ended → (outcome), as a dialer sends them."""
    from datetime import timedelta

    out = [ev("call.started", call_id, start, rep_id=rep, direction=direction)]
    answered = start + timedelta(seconds=ring)
    if talk > 0:
        out.append(ev("call.answered", call_id, answered, rep_id=rep))
        end = answered + timedelta(seconds=talk)
        out.append(
            ev("call.ended", call_id, end, rep_id=rep, end_status="completed", direction=direction)
        )
    else:
        end = answered
        out.append(
            ev("call.ended", call_id, end, rep_id=rep, end_status="no_answer", direction=direction)
        )
    if outcome:
        extra = {"amount": amount} if amount else {}
        out.append(
            ev(
                "call.outcome",
                call_id,
                end + timedelta(seconds=30),
                rep_id=rep,
                outcome=outcome,
                **extra,
            )
        )
    return out
