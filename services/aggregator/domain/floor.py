"""Both stages in memory: the embedded runner's engine, and the tests' model of the Faust path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.alerts import Alert
from schemas.calls import CallRecord
from schemas.events import CallEvent
from schemas.kpis import RepSnapshot
from services.aggregator.domain.alerts import evaluate
from services.aggregator.domain.calls import (
    CallState,
    RepFact,
    Rules,
    apply_event,
    call_record,
    forgettable,
)
from services.aggregator.domain.calls import close_if_stale as _close_if_stale
from services.aggregator.domain.rep import Context, RepState, apply_fact, prune, snapshot
from services.aggregator.domain.roster import RosterView


@dataclass(slots=True)
class Applied:
    """What one event changed: reps to re-publish and the call's new record (if it changed)."""

    reps: set[str] = field(default_factory=set)
    record: CallRecord | None = None
    duplicate: bool = False


@dataclass(slots=True)
class Floor:
    """Call states and rep states of a whole floor, updated one event at a time."""

    rules: Rules = field(default_factory=Rules)
    roster: RosterView = field(default_factory=RosterView)
    calls: dict[str, CallState] = field(default_factory=dict)
    reps: dict[str, RepState] = field(default_factory=dict)

    def apply(self, event: CallEvent, now: datetime) -> Applied:
        """Stage 1 then stage 2 for one event."""
        event = self.roster.resolve(event)
        step = apply_event(self.calls.get(event.call_id), event, self.rules)
        self.calls[event.call_id] = step.state
        out = Applied(duplicate=step.duplicate)
        if step.changed:
            out.record = call_record(step.state)
        for fact in step.facts:
            if self.apply_fact(fact, now):
                out.reps.add(fact.rep_id)
        return out

    def apply_fact(self, fact: RepFact, now: datetime) -> bool:
        """Stage 2 for one fact; True when the rep changed."""
        rep = self.reps.get(fact.rep_id) or RepState(rep_id=fact.rep_id)
        self.reps[fact.rep_id] = rep
        return apply_fact(rep, fact, self._tz(fact.rep_id, fact.team_id), now)

    def close_stale(self, now: datetime) -> list[Applied]:
        """Close every call open past max_call_seconds."""
        out = []
        for call_id, state in list(self.calls.items()):
            step = _close_if_stale(state, now, self.rules)
            if step is None:
                continue
            self.calls[call_id] = step.state
            applied = Applied(record=call_record(step.state))
            for fact in step.facts:
                if self.apply_fact(fact, now):
                    applied.reps.add(fact.rep_id)
            out.append(applied)
        return out

    def forget_ended(self, now: datetime) -> int:
        """Drop ended calls past the retention (bounded memory); how many were dropped."""
        old = [c for c, state in self.calls.items() if forgettable(state, now, self.rules)]
        for call_id in old:
            del self.calls[call_id]
        return len(old)

    def snapshot(self, rep_id: str, now: datetime, lag_seconds: float = 0.0) -> RepSnapshot:
        """The rep's snapshot at `now`."""
        rep = self.reps[rep_id]
        ctx = self.context(rep_id, rep.team_id)
        prune(rep, ZoneInfo(ctx.timezone), now)
        return snapshot(rep, ctx, now, lag_seconds)

    def alerts(self, snap: RepSnapshot, now: datetime) -> list[Alert]:
        """Evaluate the rep's alert rules on its snapshot: the transitions to notify."""
        rep = self.reps[snap.rep_id]
        ctx = self.context(snap.rep_id, rep.team_id)
        return evaluate(rep.alerts, ctx.alert_rules, snap, ctx.shift, ctx.targets, now)

    def context(self, rep_id: str, team_id: str | None) -> Context:
        """Roster facts for a rep (team, time zone, shift, targets)."""
        return self.roster.context(rep_id, team_id)

    def _tz(self, rep_id: str, team_id: str | None) -> ZoneInfo:
        return ZoneInfo(self.roster.context(rep_id, team_id).timezone)
