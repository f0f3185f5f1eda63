"""Stage 1: assemble one call from its events (any order, duplicates, transfers) into facts.

A call's *contribution* is the list of counter atoms it credits to its rep: a dial at its start, a
connect at its answer, talk and conversation at its end, a conversion at its latest outcome, a
survey at its time. Every new event of the call makes a new *version*; the stage emits a `RepFact`
for every rep the call has named, carrying the call's whole credit to that rep at that version
(absolute, not a difference: a rep it was transferred away from gets an empty credit). Stage 2
keeps, per rep and call, the last version and what it credited, and applies only the difference
of a newer version: facts may arrive in any order, twice, or late, and change nothing once seen.

A version is numbered by what was merged, not by the order it came in: twice the number of
distinct events merged, plus one while the call is closed stale (`close_if_stale`). Merging is
order-insensitive, so a call's last version has one number and one credit whatever order its
events were read in, and no earlier version of any order has a number as high. A replay in
another order after lost call states (below) therefore ends on the credit of an in-order run.
Until 2026-12-03 a version counted changes of credit, which a replay in another order made
differently: after a transfer between reps or a corrected outcome, its last version could be
one stage 2 already held with another credit, and stage 2 kept the stale one.

A call first seen here is *incarnation* 0. A late event for a call this stage has forgotten (an
outcome from the CRM hours later) starts a new incarnation, the arrival time (ms) of that event,
whose credit stage 2 keeps beside the old one's instead of taking it for an old version of it.
Until 2026-12-03 a first-seen call was also the arrival time of the event that created its
state, which a redelivery in another order changed: a worker that died after its facts were
durable but before its call states were, then a replay that read a later event of the call
first (records fetched past the committed offset are delivered before the seek back), made the
call a second incarnation and counted it twice (rocksdb soak, poison run, seed 57068990). With
one key, stage 2 applies the replay's newest version as a difference against the credit it
remembers, so the call counts once (tests/unit/aggregator/test_exactness.py).

A duplicate event (seen `event_id`) changes nothing but re-emits the current version's facts: if a
worker died after saving the call but before its facts were sent, the redelivered event repairs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.calls import CallRecord
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
    """How long an ended call is kept after its last event (by the later of its event time and
    its arrival). Then only its event ids are kept (`forgotten_retention_seconds`): a new event
    starts a new incarnation of the call, counted beside the old one, a replayed one is a
    duplicate. A call first seen by an event older than both retentions when it arrives goes
    to history only: it cannot be told from a replay of a call forgotten for good."""
    forgotten_retention_seconds: float = 2 * 86400.0
    """How long a forgotten call's event ids are kept (a replay of one is a duplicate)."""


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 6x (one per fact)
class RepFact:
    """The change of one call's contribution to one rep, at one version of the call (never
    changed once made)."""

    rep_id: str
    call_id: str
    version: int
    atoms: tuple[Atom, ...]
    """The call's whole credit to this rep at this version (empty: none, or no longer)."""
    team_id: str | None
    status: RepStatus | None
    status_at: datetime
    event_at: datetime
    incarnation: int = 0

    @property
    def credit_key(self) -> str:
        """What stage 2 remembers a credit by: the call and its incarnation."""
        return f"{self.call_id}@{self.incarnation}"

    @property
    def fact_id(self) -> str:
        """Deterministic id: the same transition always has the same id."""
        return f"{self.credit_key}:{self.version}:{self.rep_id}"

    def fields(self) -> dict[str, Any]:
        """The fact as plain values for `packing.dumps` (the `callpulse.rep-facts` message)."""
        return {
            "fact_id": self.fact_id,
            "rep_id": self.rep_id,
            "call_id": self.call_id,
            "incarnation": self.incarnation,
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
            incarnation=int(d.get("incarnation", 0)),
        )


@dataclass(slots=True)
class CallState:
    """Everything known about one call, merged from its events."""

    call_id: str
    forgotten: bool = False
    """Only the ids of its events are kept (`forget`): a replay of one of them is a duplicate."""
    incarnation: int = 0
    continues: bool = False
    """Started by a late event of a forgotten call: its record goes to history on its own."""
    history_only: bool = False
    """First seen by an event that arrived too late (`too_late`): it makes call records for
    history, but no facts for the live windows (it may be a replay of a call gone for good)."""
    partition: int = 0
    """The driver's input partition its events are read from (whose clock forgets it)."""
    arrived_at: float = 0.0
    """The latest arrival (epoch seconds) of its events: with `last_event_at`, when it may go."""
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
    reps: list[str] = field(default_factory=list)
    """Every rep an event of the call named or it credited: each version tells each of them
    its credit (empty for all but `credited_rep`), so a replay in another order that never
    credits a rep still takes back what an earlier run credited it."""
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
        return self.ended_at is None and not self.forgotten

    def stored(self) -> dict[str, Any]:
        """What is stored: all `fields()`, or of a forgotten call only what `forget` keeps."""
        if self.forgotten:
            return {name: getattr(self, name) for name in _FORGOTTEN_FIELDS}
        return self.fields()

    # -- persistence -----------------------------------------------------------------------------

    def fields(self) -> dict[str, Any]:
        """The state as plain values for `packing.dumps` (its stored form: times as ISO 8601,
        decimals as strings, atoms as arrays; `from_dict` reads it back)."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallState:
        """Read back what `fields()` gave, once encoded."""
        values = {name: d[name] for name in cls.__slots__ if name in d}
        for name in _TIME_FIELDS:
            values[name] = _dt(values.get(name))
        values["amount"] = None if d.get("amount") is None else Decimal(d["amount"])
        values["credited"] = _atoms_in(d.get("credited", ()))
        values["seen"] = list(d.get("seen", ()))
        values["reps"] = list(d.get("reps", ()))
        return cls(**values)


_FORGOTTEN_FIELDS = (
    "call_id",
    "forgotten",
    "incarnation",
    "partition",
    "arrived_at",
    "last_event_at",
    "seen",
    "version",
)
"""What a forgotten call keeps: enough to know its events, and when it may go for good."""

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
    if event.rep_id is not None and event.rep_id not in state.reps:
        state.reps.append(event.rep_id)
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


def record_id(state: CallState) -> str:
    """The call's id in history: a continuation of a forgotten call (a late outcome or survey)
    is stored beside it as `<call_id>~<incarnation>`, so neither replaces the other's facts."""
    return f"{state.call_id}~{state.incarnation}" if state.continues else state.call_id


def call_record(state: CallState) -> CallRecord:
    """The assembled call for history (`callpulse.calls`), with the credit its current version
    gave its rep as `facts` (exactly what stage 2 counted live)."""
    return CallRecord.model_validate(record_fields(state))


def record_fields(state: CallState) -> dict[str, Any]:
    """`call_record`'s fields as plain values, in the model's order: what the Faust driver
    encodes straight to the record's JSON (`packing.record_json`)."""
    assert state.last_event_at is not None  # a state exists only after an event
    connected = state.connected
    return {
        "call_id": record_id(state),
        "version": state.version,
        "rep_id": state.rep_id,
        "team_id": state.team_id,
        "campaign_id": state.campaign_id,
        "direction": state.direction or "outbound",
        "started_at": state.started_at,
        "answered_at": state.answered_at,
        "ended_at": state.ended_at,
        "end_status": state.end_status,
        "talk_seconds": float(talk_seconds(state)) if connected and not state.stale_closed else 0.0,
        "connected": connected,
        "outcome": state.outcome,
        "outcome_at": state.outcome_at,
        "amount": state.amount,
        "csat": state.csat,
        "stale_closed": state.stale_closed,
        "last_event_at": state.last_event_at,
        "facts": [
            {"kpi": RULES[index].name, "at": at, "value": natural(index, amount)}
            for index, at, amount in state.credited
        ],
    }


def status_of(state: CallState) -> tuple[RepStatus, datetime]:
    """The rep status this call implies, and since when."""
    if state.ended_at is not None:
        return "wrap_up", state.ended_at
    if state.answered_at is not None:
        return "on_call", state.answered_at
    since = state.started_at or state.last_event_at
    assert since is not None  # a state exists only after an event
    return "ringing", since


def _facts(state: CallState) -> list[RepFact]:
    """The RepFacts of the state's current version: the whole credit of its rep, and an empty
    one for the rep it was transferred away from (stage 2 retracts what that rep had)."""
    status, status_at = status_of(state)
    event_at = state.last_event_at
    assert event_at is not None  # a state exists only after an event

    def fact(rep_id: str, atoms: tuple[Atom, ...], team_id: str | None, status: Any) -> RepFact:
        return RepFact(
            rep_id, state.call_id, state.version, atoms, team_id, status, status_at, event_at,
            state.incarnation,
        )  # fmt: skip

    facts = [fact(rep, (), None, None) for rep in state.reps if rep != state.credited_rep]
    if state.credited_rep is not None:
        facts.append(fact(state.credited_rep, state.credited, state.team_id, status))
    return facts


@dataclass(frozen=True, slots=True)
class Step:
    """What applying one event did: the new state and the facts to send (maybe re-sent). Not a
    duplicate: a new version of the call, whose record goes to history."""

    state: CallState
    facts: list[RepFact]
    duplicate: bool


def apply_event(
    state: CallState | None,
    event: CallEvent,
    rules: Rules,
    arrived: float = 0.0,
    partition: int = 0,
    *,
    backfill: bool = False,
) -> Step:
    """Apply one event, arrived at `arrived` (epoch seconds) on `partition`, to a call (state
    None for a call not held: a new incarnation, for history only if `backfill`); pure apart
    from the returned copy."""
    if state is not None and state.forgotten and event.event_id in state.seen:
        return Step(state, [], duplicate=True)  # its facts went out long ago
    if state is None or state.forgotten:
        current = CallState(
            call_id=event.call_id,
            # a call first seen is incarnation 0 whichever of its events comes first: a replay
            # reading them in another order must not make it a second call (module docstring)
            incarnation=0 if state is None else round(arrived * 1000),
            partition=partition,
            history_only=backfill,
        )
        if state is not None:
            current.seen = list(state.seen)  # the forgotten incarnation's events stay known
            current.continues = True
    else:
        current = _copy(state)
    if event.event_id in current.seen:
        return Step(current, _resend(current), duplicate=True)
    current.arrived_at = max(current.arrived_at, arrived)
    current.seen.append(event.event_id)
    del current.seen[:-SEEN_IDS_PER_CALL]
    merge(current, event)
    # every new event is a new version, numbered by the events merged (module docstring)
    current.version = (current.version // 2 + 1) * 2 + current.stale_closed
    return Step(current, _advance(current, rules), duplicate=False)


def close_if_stale(state: CallState, now: datetime, rules: Rules) -> Step | None:
    """Close a call with no end after max_call_seconds as `failed` (flagged; no talk credited)."""
    if not state.is_open or state.last_event_at is None:
        return None
    deadline = stale_deadline(state, rules)
    if now < deadline:
        return None
    current = _copy(state)
    current.ended_at, current.end_status, current.stale_closed = deadline, "failed", True
    current.version += 1  # odd: the events merged, closed stale (module docstring)
    return Step(current, _advance(current, rules), duplicate=False)


def stale_deadline(state: CallState, rules: Rules) -> datetime:
    """When a call left open is closed as stale: `max_call_seconds` after it began."""
    assert state.last_event_at is not None  # a state exists only after an event
    began = state.started_at or state.answered_at or state.last_event_at
    return began + timedelta(seconds=rules.max_call_seconds)


def forgettable(state: CallState, now: datetime, rules: Rules) -> bool:
    """An ended call whose last event occurred and arrived longer than the retention before
    `now` (the latest arrival this stage has read: see `CallStage`): it may be forgotten."""
    if state.is_open or state.forgotten or state.last_event_at is None:
        return False
    return past_retention(state, now, rules)


def forget(state: CallState) -> CallState:
    """The call reduced to what tells its events again (`CallState.stored`)."""
    kept = CallState(call_id=state.call_id, forgotten=True)
    for name in _FORGOTTEN_FIELDS[2:]:
        setattr(kept, name, getattr(state, name))
    kept.seen = list(state.seen)
    return kept


FORGET_MARGIN_SECONDS = 60.0
"""Kept this much past the retention: room for a partition said read to its end a moment
before a record arrived."""


def past_retention(state: CallState, now: datetime, rules: Rules) -> bool:
    """Both the call's last event time and its last arrival are older than its retention (the
    call's, or once forgotten, that of its event ids)."""
    return now.timestamp() - last_seen(state) > kept_for(rules, forgotten=state.forgotten)


def last_seen(state: CallState) -> float:
    """The later of the call's last event time and its last arrival (epoch seconds): its
    retention counts from there."""
    assert state.last_event_at is not None  # a state exists only after an event
    return max(state.last_event_at.timestamp(), state.arrived_at)


def kept_for(rules: Rules, *, forgotten: bool) -> float:
    """Seconds past its last event and arrival a call is kept (as a call, or its event ids)."""
    keep = rules.call_retention_seconds + FORGET_MARGIN_SECONDS
    return keep + rules.forgotten_retention_seconds if forgotten else keep


def too_late(event: CallEvent, arrived: float, rules: Rules) -> bool:
    """An event for a call not held that arrived longer after it occurred than a call and its
    event ids are kept: it may be a replay of a call gone for good (history only)."""
    keep = rules.call_retention_seconds + rules.forgotten_retention_seconds
    return arrived - event.occurred_at.timestamp() > keep


def _advance(state: CallState, rules: Rules) -> list[RepFact]:
    """The facts of the call's new version (numbered by the caller): its credit to each rep."""
    if state.credited_rep is not None and state.credited_rep not in state.reps:
        state.reps.append(state.credited_rep)  # a state stored before `reps` was kept
    state.credited_rep, state.credited = state.rep_id, contribution(state, rules)
    state.status, state.status_at = status_of(state)
    return _facts(state)


def _resend(state: CallState) -> list[RepFact]:
    """The current version's facts again; stage 2 drops the ones it has applied."""
    return _facts(state) if state.version else []


def _copier() -> Callable[[CallState], CallState]:
    """`_copy`, written out field by field once (as dataclasses writes `__init__`): a loop of
    getattr/setattr over the slots took ~7 µs a call (~10 in the drain), this ~0.75 µs."""
    body = "".join(f"    new.{name} = state.{name}\n" for name in CallState.__slots__)
    source = (
        "def _copy(state):\n    new = new_state(CallState)\n" + body +
        "    new.seen, new.reps = list(state.seen), list(state.reps)\n    return new\n"
    )  # fmt: skip
    namespace: dict[str, Any] = {"CallState": CallState, "new_state": object.__new__}
    exec(compile(source, "<CallState copy>", "exec"), namespace)  # noqa: S102
    return namespace["_copy"]  # type: ignore[no-any-return]


_copy = _copier()
"""A copy of a call's state to change (`dataclasses.replace` re-runs `__init__`)."""
