"""When each held call is next due for stage 1's sweep, so a sweep looks only at those.

A call left open is due by the wall clock, `max_call_seconds` after it began (it is closed as
failed); an ended call, and later its forgotten event ids, by the clock of its input partition,
past its retention. The sweep used to decode every held call each time: three quarters of an
embedded replay's time (a sweep per 10 minutes of log over some 9,000 calls) and half of an
idle Faust worker's CPU with a month of calls.

The index is a heap per clock with lazy deletion: a call's newest due time is in `due`; heap
entries that no longer match it are dropped when they come up.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from datetime import timedelta

from services.aggregator.domain.calls import CallState, Rules, kept_for

WALL = -1
"""The heap of open calls: due by the wall clock (`now`), not by a partition's clock."""

DueAt = tuple[int, float]
"""A clock (`WALL`, or an input partition) and the time on it (epoch seconds)."""


def due_at(state: CallState, rules: Rules) -> DueAt | None:
    """When the sweep must look at the call again (the thresholds of `close_if_stale` and
    `past_retention`)."""
    if state.last_event_at is None:
        return None
    if state.is_open:
        began = state.started_at or state.answered_at or state.last_event_at
        return WALL, (began + timedelta(seconds=rules.max_call_seconds)).timestamp()
    latest = max(state.last_event_at.timestamp(), state.arrived_at)
    return state.partition, latest + kept_for(rules, forgotten=state.forgotten)


class DueIndex:
    """Calls by the time they are next due, a heap per clock."""

    def __init__(self) -> None:
        self.due: dict[str, DueAt] = {}
        self.heaps: defaultdict[int, list[tuple[float, str]]] = defaultdict(list)
        self.entries = 0

    def note(self, call_id: str, at: DueAt | None) -> None:
        """The call is due at `at` now (None: it is no longer held)."""
        if at is None:
            self.due.pop(call_id, None)
            return
        if self.due.get(call_id) == at:
            return
        self.due[call_id] = at
        heapq.heappush(self.heaps[at[0]], (at[1], call_id))
        self.entries += 1
        if self.entries > 2 * len(self.due) + 10_000:
            self._compact()

    def candidates(self, now: float, clocks: dict[int, float]) -> list[str]:
        """Calls due by `now` (open calls) or by their partition's clock in `clocks` (a
        partition with no clock yet has none due). They stay indexed until saved again."""
        found: list[str] = []
        for clock_id, heap in self.heaps.items():
            clock = now if clock_id == WALL else clocks.get(clock_id)
            if clock is None:
                continue
            current = []
            while heap and heap[0][0] <= clock:
                entry = heapq.heappop(heap)
                self.entries -= 1
                if self.due.get(entry[1]) == (clock_id, entry[0]):
                    current.append(entry)
            for entry in current:  # still held: checked again until a save moves them on
                heapq.heappush(heap, entry)
                self.entries += 1
            found += [call_id for _, call_id in current]
        return found

    def _compact(self) -> None:
        """Drop the heap entries of older due times (calls saved many times)."""
        self.heaps = defaultdict(list)
        for call_id, (clock_id, at) in self.due.items():
            self.heaps[clock_id].append((at, call_id))
        for heap in self.heaps.values():
            heapq.heapify(heap)
        self.entries = len(self.due)
