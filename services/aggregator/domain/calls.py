"""Stage 1: assemble one call from its events (any order, duplicates, transfers) into facts.

A call's *contribution* is the list of counter atoms it credits to its rep: a dial at its start, a
connect at its answer, talk and conversation at its end, a conversion at its latest outcome, a
survey at its time. Each change of the call makes a new *version*; for every rep whose share
changed the stage emits a `RepFact` carrying the difference (new minus old atoms) and the version.
Stage 2 applies a rep's facts once per (call, version), so redelivery never double-counts, and
because facts are differences, an outcome correction or a transfer retracts what was credited.

A duplicate event (seen `event_id`) changes nothing but re-emits the current version's facts: if a
worker died after saving the call but before its facts were sent, the redelivered event repairs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.calls import CallFact, CallRecord
from schemas.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOutcome,
    CallStarted,
    SurveyCompleted,
)
from schemas.kpis import RepStatus
from services.aggregator.domain.counters import RULES, Atom, credit, natural, talk_seconds

SEEN_IDS_PER_CALL = 64


@dataclass(frozen=True, slots=True)
class Rules:
    """Tunable KPI rules (design §1, §3.2)."""

    conversation_min_seconds: float = 300.0
    max_call_seconds: float = 4 * 3600.0
    call_retention_seconds: float = 6 * 3600.0
    """How long an ended call is kept for late events (outcome, survey, correction) after its
    last event. A later event starts the call afresh at version 1, which stage 2 (remembering
    the call's higher version) and history both ignore: it is not counted (a known limit)."""


@dataclass(frozen=True, slots=True)
class RepFact:
    """The change of one call's contribution to one rep, at one version of the call."""

    rep_id: str
    call_id: str
    version: int
    atoms: tuple[Atom, ...]
    team_id: str | None
    status: RepStatus | None
    status_at: datetime
    event_at: datetime

    @property
    def fact_id(self) -> str:
        """Deterministic id: the same transition always has the same id."""
        return f"{self.call_id}:{self.version}:{self.rep_id}"

    def fields(self) -> dict[str, Any]:
        """The fact as plain values for `packing.dumps` (the `callpulse.rep-facts` message)."""
        return {
            "fact_id": self.fact_id,
            "rep_id": self.rep_id,
            "call_id": self.call_id,
            "version": self.version,
            "atoms": self.atoms,
            "team_id": self.team_id,
            "status": self.status,
            "status_at": self.status_at,
            "event_at": self.event_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RepFact:
        """Read back what `fields()` gave, once encoded."""
        return cls(
            rep_id=d["rep_id"],
            call_id=d["call_id"],
            version=int(d["version"]),
            atoms=_atoms_in(d["atoms"]),
            team_id=d.get("team_id"),
            status=d.get("status"),
            status_at=datetime.fromisoformat(d["status_at"]),
            event_at=datetime.fromisoformat(d["event_at"]),
        )


@dataclass(slots=True)
class CallState:
    """Everything known about one call, merged from its events."""

    call_id: str
    seen: list[str] = field(default_factory=list)
    rep_id: str | None = None
    rep_key: list[Any] | None = None
    team_id: str | None = None
    team_key: list[Any] | None = None
    campaign_id: str | None = None
    direction: str | None = None
    direction_key: list[Any] | None = None
    start_seen: bool = False
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    end_status: str | None = None
    end_key: list[Any] | None = None
    talk_seconds: float | None = None
    outcome: str | None = None
    outcome_at: datetime | None = None
    outcome_key: list[Any] | None = None
    amount: Decimal | None = None
    csat: int | None = None
    csat_at: datetime | None = None
    csat_key: list[Any] | None = None
    last_event_at: datetime | None = None
    stale_closed: bool = False
    version: int = 0
    credited_rep: str | None = None
    credited: tuple[Atom, ...] = ()
    prev_rep: str | None = None
    prev_credited: tuple[Atom, ...] = ()
    status: RepStatus = "idle"
    status_at: datetime | None = None

    @property
    def connected(self) -> bool:
        """Answered, or a completed end with talk time (design §3.2)."""
        if self.answered_at is not None:
            return True
        return self.end_status == "completed" and (self.talk_seconds or 0) > 0

    @property
    def is_open(self) -> bool:
        """Started or answered, not yet ended."""
        return self.ended_at is None

    # -- persistence -----------------------------------------------------------------------------

    def fields(self) -> dict[str, Any]:
        """The state as plain values for `packing.dumps` (its stored form: times as ISO 8601,
        decimals as strings, atoms as arrays; `from_dict` reads it back)."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallState:
        """Read back what `fields()` gave, once encoded."""
        values = dict(d)
        for name in _TIME_FIELDS:
            values[name] = _dt(values.get(name))
        values["amount"] = None if d.get("amount") is None else Decimal(d["amount"])
        values["credited"] = _atoms_in(d.get("credited", ()))
        values["prev_credited"] = _atoms_in(d.get("prev_credited", ()))
        values["seen"] = list(d.get("seen", ()))
        return cls(**values)


_TIME_FIELDS = (
    "started_at",
    "answered_at",
    "ended_at",
    "outcome_at",
    "csat_at",
    "last_event_at",
    "status_at",
)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _atoms_in(raw: Any) -> tuple[Atom, ...]:
    return tuple((int(i), datetime.fromisoformat(at), int(v)) for i, at, v in raw)


def _wins(current: list[Any] | None, candidate: list[Any]) -> bool:
    """Latest by occurred_at wins; equal times are settled by event_id, never by arrival."""
    return current is None or candidate > current


def merge(state: CallState, event: CallEvent) -> None:
    """Fold one new event into the call; the result does not depend on arrival order."""
    at = event.occurred_at.astimezone(UTC)
    key: list[Any] = [at.timestamp(), event.event_id]
    if event.rep_id is not None and _wins(state.rep_key, key):
        # The latest event naming a rep wins: a transferred call belongs to who has it last.
        state.rep_id, state.rep_key = event.rep_id, key
    if event.team_id is not None and _wins(state.team_key, key):
        state.team_id, state.team_key = event.team_id, key
    if event.campaign_id is not None:
        state.campaign_id = event.campaign_id
    if state.last_event_at is None or at > state.last_event_at:
        state.last_event_at = at
    match event:
        case CallStarted():
            state.start_seen = True
            state.started_at = _earliest(state.started_at, at)
            if _wins(state.direction_key, key):  # the latest start says, not the last to arrive
                state.direction, state.direction_key = event.direction, key
        case CallAnswered():
            state.answered_at = _earliest(state.answered_at, at)
        case CallEnded():
            _merge_end(state, event, at, key)
        case CallOutcome():
            if _wins(state.outcome_key, key):
                state.outcome, state.outcome_at, state.amount = event.outcome, at, event.amount
                state.outcome_key = key
        case SurveyCompleted():
            if _wins(state.csat_key, key):
                state.csat, state.csat_at, state.csat_key = event.csat, at, key


def _merge_end(state: CallState, event: CallEnded, at: datetime, key: list[Any]) -> None:
    """An end (or a CDR): its start and answer times count as earliest-seen; the latest end wins,
    and any real end replaces one the stale sweep made up."""
    if event.started_at is not None:
        state.started_at = _earliest(state.started_at, event.started_at.astimezone(UTC))
    if event.answered_at is not None:
        state.answered_at = _earliest(state.answered_at, event.answered_at.astimezone(UTC))
    if state.stale_closed or _wins(state.end_key, key):
        state.ended_at, state.end_status, state.end_key = at, event.end_status, key
        state.talk_seconds = event.talk_seconds
        state.stale_closed = False
        if not state.start_seen:
            state.direction = event.direction


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def contribution(state: CallState, rules: Rules) -> tuple[Atom, ...]:
    """The atoms this call credits to its rep, by the rule table (none while the rep is unknown)."""
    return credit(state, rules)


def call_record(state: CallState) -> CallRecord:
    """The assembled call for history (`callpulse.calls`), with the credit its current version
    gave its rep as `facts` (exactly what stage 2 counted live)."""
    assert state.last_event_at is not None  # a state exists only after an event
    return CallRecord(
        call_id=state.call_id,
        version=state.version,
        rep_id=state.rep_id,
        team_id=state.team_id,
        campaign_id=state.campaign_id,
        direction=state.direction or "outbound",
        started_at=state.started_at,
        answered_at=state.answered_at,
        ended_at=state.ended_at,
        end_status=state.end_status,
        talk_seconds=talk_seconds(state) if state.connected and not state.stale_closed else 0.0,
        connected=state.connected,
        outcome=state.outcome,
        outcome_at=state.outcome_at,
        amount=state.amount,
        csat=state.csat,
        stale_closed=state.stale_closed,
        last_event_at=state.last_event_at,
        facts=[
            CallFact(kpi=RULES[index].name, at=at, value=natural(index, amount))
            for index, at, amount in state.credited
        ],
    )


def status_of(state: CallState) -> tuple[RepStatus, datetime]:
    """The rep status this call implies, and since when."""
    if state.ended_at is not None:
        return "wrap_up", state.ended_at
    if state.answered_at is not None:
        return "on_call", state.answered_at
    since = state.started_at or state.last_event_at
    assert since is not None  # a state exists only after an event
    return "ringing", since


def _difference(old: tuple[Atom, ...], new: tuple[Atom, ...]) -> tuple[Atom, ...]:
    """new - old as atoms, cancelling identical pairs so unchanged facts send nothing."""
    remaining = list(new)
    out: list[Atom] = []
    for atom in old:
        if atom in remaining:
            remaining.remove(atom)
        else:
            out.append((atom[0], atom[1], -atom[2]))
    return tuple(out + remaining)


def _facts(state: CallState) -> list[RepFact]:
    """The RepFacts of the state's current version: its credit minus the previous version's."""
    status, status_at = status_of(state)
    event_at = state.last_event_at
    assert event_at is not None  # a state exists only after an event
    facts: list[RepFact] = []
    prev = state.prev_credited
    if state.prev_rep is not None and state.prev_rep != state.credited_rep:
        retract = _difference(prev, ())
        facts.append(
            RepFact(
                state.prev_rep,
                state.call_id,
                state.version,
                retract,
                None,
                None,
                status_at,
                event_at,
            )
        )
        prev = ()
    if state.credited_rep is not None:
        delta = _difference(prev, state.credited)
        facts.append(
            RepFact(
                state.credited_rep,
                state.call_id,
                state.version,
                delta,
                state.team_id,
                status,
                status_at,
                event_at,
            )
        )
    return facts


@dataclass(frozen=True, slots=True)
class Step:
    """What applying one event did: the new state and the facts to send (maybe re-sent)."""

    state: CallState
    facts: list[RepFact]
    duplicate: bool
    changed: bool = False
    """A new version of the call: its record for history changed."""


def apply_event(state: CallState | None, event: CallEvent, rules: Rules) -> Step:
    """Apply one event to a call (state None for a new call); pure apart from the returned copy."""
    current = CallState(call_id=event.call_id) if state is None else _copy(state)
    if event.event_id in current.seen:
        return Step(current, _resend(current), duplicate=True)
    current.seen.append(event.event_id)
    del current.seen[:-SEEN_IDS_PER_CALL]
    before = _fingerprint(current)
    merge(current, event)
    changed = _fingerprint(current) != before
    facts = _advance(current, rules, force=changed)
    return Step(current, facts, duplicate=False, changed=changed or bool(facts))


def _fingerprint(state: CallState) -> tuple[Any, ...]:
    """What a call record shows: a change of any of it makes a new version for history."""
    return (
        state.rep_id,
        state.team_id,
        state.campaign_id,
        state.direction,
        state.started_at,
        state.answered_at,
        state.ended_at,
        state.end_status,
        state.talk_seconds,
        state.outcome,
        state.outcome_at,
        state.amount,
        state.csat,
        state.stale_closed,
    )


def close_if_stale(state: CallState, now: datetime, rules: Rules) -> Step | None:
    """Close a call with no end after max_call_seconds as `failed` (flagged; no talk credited)."""
    if not state.is_open or state.last_event_at is None:
        return None
    began = state.started_at or state.answered_at or state.last_event_at
    deadline = began + timedelta(seconds=rules.max_call_seconds)
    if now < deadline:
        return None
    current = _copy(state)
    current.ended_at, current.end_status, current.stale_closed = deadline, "failed", True
    return Step(current, _advance(current, rules, force=True), duplicate=False, changed=True)


def forgettable(state: CallState, now: datetime, rules: Rules) -> bool:
    """An ended call whose last event is older than the retention: its state may be dropped."""
    if state.is_open or state.last_event_at is None:
        return False
    return now - state.last_event_at > timedelta(seconds=rules.call_retention_seconds)


def _advance(state: CallState, rules: Rules, *, force: bool = False) -> list[RepFact]:
    """Make a new version when the call changed; its facts carry the change of credit."""
    new = contribution(state, rules)
    status = status_of(state)
    unchanged = state.rep_id == state.credited_rep and new == state.credited
    if unchanged and status == (state.status, state.status_at) and not force:
        return []
    state.version += 1
    state.prev_rep, state.prev_credited = state.credited_rep, state.credited
    state.credited_rep, state.credited = state.rep_id, new
    state.status, state.status_at = status
    return _facts(state)


def _resend(state: CallState) -> list[RepFact]:
    """The current version's facts again; stage 2 drops the ones it has applied."""
    return _facts(state) if state.version else []


def _copy(state: CallState) -> CallState:
    """A copy to change (dataclasses.replace re-runs __init__: a tenth of stage 1's time)."""
    new = object.__new__(CallState)
    for name in CallState.__slots__:
        object.__setattr__(new, name, getattr(state, name))
    new.seen = list(state.seen)
    return new
