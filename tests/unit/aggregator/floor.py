"""A whole floor on the aggregator core in memory, one event at a time: the unit tests' driver.

It feeds the same `services.aggregator.core.Aggregator` both real drivers feed; only the batch
size (one event) and the clock (passed in) are the test's.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import datetime

from schemas.alerts import Alert
from schemas.events import CallEvent
from schemas.kpis import RepSnapshot
from services.aggregator.core import Aggregator, CallBatch, CallStage, MemoryStore
from services.aggregator.domain.calls import CallState, Rules
from services.aggregator.domain.rep import RepState, prune
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.aggregator.packing import dumps, loads


class _Calls(MutableMapping[str, CallState]):
    """Stage 1's calls as a mapping; a write goes behind the core, which indexes them again."""

    def __init__(self, stage: CallStage) -> None:
        self.stage, self.store = stage, stage.store

    def __getitem__(self, call_id: str) -> CallState:
        raw = self.store.get(call_id.encode())
        if raw is None:
            raise KeyError(call_id)
        return CallState.from_dict(loads(raw))

    def __setitem__(self, call_id: str, state: CallState) -> None:
        self.store.put(call_id.encode(), dumps(state.fields()))
        self.stage.invalidate()

    def __delitem__(self, call_id: str) -> None:
        self.store.put(call_id.encode(), None)
        self.stage.invalidate()

    def __iter__(self) -> Iterator[str]:
        return iter([key.decode() for key in self.store.stored_keys()])

    def __len__(self) -> int:
        return len(list(self.store.stored_keys()))


class _Reps(MutableMapping[str, RepState]):
    def __init__(self, core: Aggregator) -> None:
        self.core = core

    def __getitem__(self, rep_id: str) -> RepState:
        if self.core.reps.store.get(rep_id.encode()) is None:
            raise KeyError(rep_id)
        return self.core.reps.state(rep_id)

    def __setitem__(self, rep_id: str, state: RepState) -> None:
        self.core.reps.live[rep_id] = state
        self.core.reps.save(rep_id)

    def __delitem__(self, rep_id: str) -> None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        return iter(self.core.reps.held())

    def __len__(self) -> int:
        return len(self.core.reps.held())


class Floor:
    """Both stages of the core over in-memory stores."""

    def __init__(self, rules: Rules | None = None, roster: RosterView | None = None) -> None:
        self.rules = rules or Rules()
        self.roster = roster or RosterView()
        self.core = Aggregator.build(
            MemoryStore(), MemoryStore(), rules=self.rules, roster=self.roster, metrics=Metrics()
        )
        self.calls = _Calls(self.core.calls)
        self.reps = _Reps(self.core)

    def apply(self, event: CallEvent, now: datetime, arrived: datetime | None = None) -> CallBatch:
        """Stage 1 then stage 2 for one event, arrived at `arrived` (default: when it occurred,
        as live traffic does, or `now` if that is earlier): what stage 1 made of it."""
        arrival = arrived or min(event.occurred_at, now)
        batch = self.core.calls.assemble([(event, arrival.timestamp(), 0)])
        self.core.reps.accumulate(batch.facts, now)
        self.core.calls.save(batch)
        return batch

    def close_stale(self, now: datetime) -> CallBatch:
        """The stale-call sweep at `now` (closing and forgetting): what stage 1 made of it."""
        self.core.calls.caught_up(0, now.timestamp())  # one event at a time: always read to the end
        batch = self.core.calls.expire(self.core.calls.due(now), now, now.timestamp())
        self.core.reps.accumulate(batch.facts, now)
        self.core.calls.save(batch)
        return batch

    def forget_ended(self, now: datetime) -> int:
        """The sweep at `now`; how many calls it forgot (down to their event ids, or for good)."""
        before = len(self.held())
        self.close_stale(now)
        return before - len(self.held())

    def held(self) -> set[str]:
        """The calls held whole (not forgotten)."""
        return {call_id for call_id, state in self.calls.items() if not state.forgotten}

    def snapshot(self, rep_id: str, now: datetime) -> RepSnapshot:
        """The rep's snapshot at `now` (pruned as a published one is)."""
        state = self.core.reps.state(rep_id)
        prune(state, self._tz(rep_id, state), now)
        return self.core.reps.snapshot(rep_id, now)

    def alerts(self, snap: RepSnapshot, now: datetime) -> list[Alert]:
        """Judge the rep's rules at `now`: the transitions to notify (delivered at once)."""
        judged = self.core.reps.judge(now)
        self.core.reps.delivered(judged)
        return [a for a in judged if a.rep_id == snap.rep_id]

    def _tz(self, rep_id: str, state: RepState):  # type: ignore[no-untyped-def]
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.core.reps.context(rep_id, state).timezone)
