"""When each held call is next due for stage 1's sweep, so a sweep looks only at those.

A call left open is due by the wall clock, `max_call_seconds` after it began (it is closed as
failed); an ended call, and later its forgotten event ids, by the clock of its input partition,
past its retention. The sweep used to decode every held call each time: three quarters of an
embedded replay's time (a sweep per 10 minutes of log over some 9,000 calls) and half of an
idle Faust worker's CPU with a month of calls.

The index holds only keys, in a bucket per minute of due time and clock: no copy of a call's
state (a month of a 10,000-rep floor holds 1.4 million calls). A save adds the key to its new
bucket and leaves it in the old one; when a bucket comes due, each key in it is checked against
the call's stored state, so an outdated entry goes then.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable

from services.aggregator.domain.calls import (
    CallState,
    Rules,
    kept_for,
    last_seen,
    stale_deadline,
)

WALL = -1
"""The clock of open calls: the wall clock (`now`), not a partition's."""
BUCKET_SECONDS = 60

DueAt = tuple[int, float]
"""A clock (`WALL`, or an input partition) and the time on it (epoch seconds)."""


def due_at(state: CallState, rules: Rules) -> DueAt | None:
    """When the sweep must look at the call again (the thresholds of `close_if_stale` and
    `past_retention`)."""
    if state.last_event_at is None:
        return None
    if state.is_open:
        return WALL, stale_deadline(state, rules).timestamp()
    return state.partition, last_seen(state) + kept_for(rules, forgotten=state.forgotten)


class DueIndex:
    """Call keys by clock and minute of due time."""

    def __init__(self) -> None:
        self.buckets: defaultdict[int, dict[int, list[bytes]]] = defaultdict(dict)
        self.minutes: defaultdict[int, list[int]] = defaultdict(list)
        """clock -> a heap of the minutes that have a bucket."""

    def note(self, key: bytes, at: DueAt | None) -> None:
        """The call is due at `at` now (None: no longer held; its entries go when they come
        up)."""
        if at is None:
            return
        clock_id, when = at
        minute = int(when // BUCKET_SECONDS)
        buckets = self.buckets[clock_id]
        keys = buckets.get(minute)
        if keys is None:
            buckets[minute] = keys = []
            heapq.heappush(self.minutes[clock_id], minute)
        keys.append(key)

    def candidates(
        self, now: float, clocks: dict[int, float], due_of: Callable[[bytes], DueAt | None]
    ) -> list[bytes]:
        """Keys of calls due by `now` (open calls) or by their partition's clock in `clocks` (a
        partition with no clock yet has none due), as `due_of` tells from the stored state. A
        due call stays indexed (it is found again until a save moves it on)."""
        found: set[bytes] = set()
        for clock_id, minutes in self.minutes.items():
            clock = now if clock_id == WALL else clocks.get(clock_id)
            if clock is None:
                continue
            limit = int(clock // BUCKET_SECONDS)
            buckets = self.buckets[clock_id]
            keys: set[bytes] = set()
            while minutes and minutes[0] <= limit:
                keys.update(buckets.pop(heapq.heappop(minutes)))
            for key in keys:
                at = due_of(key)
                if at is None or at[0] != clock_id or at[1] // BUCKET_SECONDS > limit:
                    continue  # gone, or a later save put it in another bucket
                self.note(key, at)
                if at[1] <= clock:
                    found.add(key)
        return list(found)

    def __len__(self) -> int:
        """Entries held (a key saved several times may be in several buckets)."""
        return sum(len(keys) for buckets in self.buckets.values() for keys in buckets.values())
