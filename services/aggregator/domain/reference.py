"""The reference fold: KPIs computed directly from a de-duplicated event list.

Deliberately simple and separate from the incremental code: group the events by call, read off
each call's facts, and count the facts whose time falls inside each window. Tests and benchmarks
use it as ground truth for the streaming path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from schemas import windows as w
from schemas.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOutcome,
    CallStarted,
    SurveyCompleted,
)
from schemas.kpis import WINDOWS, WindowName, kpi_values
from services.aggregator.domain.calls import Rules


def _latest(events: list[Any]) -> Any | None:
    """The event with the greatest (occurred_at, event_id), or None."""
    return max(events, key=lambda e: (e.occurred_at.timestamp(), e.event_id), default=None)


def _call_facts(
    events: list[CallEvent], rules: Rules
) -> tuple[str | None, str | None, list[tuple[str, datetime, Any]]]:
    """(rep, team, facts) of one call, each fact (name, time, amount)."""
    rep_event = _latest([e for e in events if e.rep_id is not None])
    team_event = _latest([e for e in events if e.team_id is not None])
    rep = rep_event.rep_id if rep_event else None
    team = team_event.team_id if team_event else None
    starts = [e for e in events if isinstance(e, CallStarted)]
    ends = [e for e in events if isinstance(e, CallEnded)]
    end = _latest(ends)
    start_times = [e.occurred_at for e in starts] + [e.started_at for e in ends if e.started_at]
    answer_times = [e.occurred_at for e in events if isinstance(e, CallAnswered)]
    answer_times += [e.answered_at for e in ends if e.answered_at]
    started = min(start_times, default=None)
    answered = min(answer_times, default=None)
    ended = end.occurred_at if end else None
    start = _latest(starts)
    direction = start.direction if start else end.direction if end else "outbound"
    talk = 0.0
    if end is not None:
        if end.talk_seconds is not None:
            talk = end.talk_seconds
        elif answered is not None:
            talk = max(0.0, (end.occurred_at - answered).total_seconds())
    connected = answered is not None or (
        end is not None and end.end_status == "completed" and talk > 0
    )
    facts: list[tuple[str, datetime, Any]] = []
    first = started or answered or ended
    inbound = direction == "inbound"
    if first is not None and not inbound:
        facts.append(("dials", first, 1))
    if connected:
        at = answered or first
        assert at is not None  # connected implies an answer or an end
        facts.append(("connects", at, 1))
        if inbound:
            facts.append(("inbound_calls", at, 1))
        if ended is not None:
            # talk is counted in whole milliseconds, as the counters keep it
            facts.append(("talk_seconds", ended, Decimal(round(talk * 1000)) / 1000))
            if talk >= rules.conversation_min_seconds:
                facts.append(("conversations", ended, 1))
    outcome = _latest([e for e in events if isinstance(e, CallOutcome)])
    if outcome is not None and outcome.outcome == "sale":
        facts.append(("conversions", outcome.occurred_at, 1))
        facts.append(("revenue", outcome.occurred_at, outcome.amount or Decimal(0)))
    survey = _latest([e for e in events if isinstance(e, SurveyCompleted)])
    if survey is not None:
        facts.append(("csat_sum", survey.occurred_at, survey.csat))
        facts.append(("csat_responses", survey.occurred_at, 1))
    return rep, team, facts


def _in_window(at: datetime, window: WindowName, now: datetime, tz: ZoneInfo) -> bool:
    start, end = w.bounds(window, now, tz)
    if window in ("15m", "60m", "hour"):
        # minute buckets: a fact counts by the minute it falls in
        minute_start = datetime.fromtimestamp(w.epoch_minute(at) * 60, UTC)
        return start <= minute_start and w.epoch_minute(at) <= w.epoch_minute(now)
    return start <= at < end and w.local_day(at, tz) <= w.local_day(now, tz)


def fold(
    events: Iterable[CallEvent],
    now: datetime,
    timezones: Mapping[str, str] | None = None,
    rules: Rules | None = None,
    default_timezone: str = "UTC",
) -> dict[str, dict[WindowName, dict[str, Any]]]:
    """KPIs per rep and window at `now` for de-duplicated events (rep -> window -> values)."""
    rules = rules or Rules()
    timezones = timezones or {}
    calls: dict[str, list[CallEvent]] = defaultdict(list)
    for event in events:
        calls[event.call_id].append(event)
    sums: dict[str, dict[WindowName, dict[str, Any]]] = {}
    for call_events in calls.values():
        rep, _team, facts = _call_facts(call_events, rules)
        if rep is None:
            continue
        tz = ZoneInfo(timezones.get(rep, default_timezone))
        per_window = sums.setdefault(rep, {win: defaultdict(int) for win in WINDOWS})
        for name, at, amount in facts:
            for window in WINDOWS:
                if _in_window(at, window, now, tz):
                    per_window[window][name] += amount
    return {
        rep: {
            window: kpi_values(
                dials=t["dials"],
                inbound_calls=t["inbound_calls"],
                connects=t["connects"],
                talk_seconds=float(t["talk_seconds"]),
                conversations=t["conversations"],
                conversions=t["conversions"],
                revenue=float(t["revenue"]),
                csat_sum=t["csat_sum"],
                csat_responses=t["csat_responses"],
            )
            for window, t in windows.items()
        }
        for rep, windows in sums.items()
    }
