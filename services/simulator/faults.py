"""Seeded delivery faults of a real phone system: re-sent, reordered and late events.

`inject` gives each event a send time: its own time, or later for a late or reordered event, plus
extra copies for duplicates (same event_id). It is lazy, so it works on an endless live stream.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.events import CallEvent


@dataclass(frozen=True, slots=True)
class Faults:
    """Fractions of events duplicated, reordered and sent late; delays are in seconds."""

    duplicates: float = 0.0
    reorder: float = 0.0
    late: float = 0.0
    seed: int = 0
    duplicate_delay: tuple[float, float] = (0.5, 60.0)
    reorder_window: float = 30.0
    late_delay: tuple[float, float] = (60.0, 600.0)

    def __post_init__(self) -> None:
        for name in ("duplicates", "reorder", "late"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a fraction in [0, 1]")


@dataclass(frozen=True, slots=True)
class Scheduled:
    """An event and the time its sender sends it."""

    send_at: datetime
    event: CallEvent


def _delay(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(milliseconds=round(rng.uniform(low, high) * 1000))


def inject(events: Iterable[CallEvent], faults: Faults | None = None) -> Iterator[Scheduled]:
    """Time-ordered events as sent, in send order; without faults every event is sent on time."""
    faults = faults or Faults()
    # Not cryptographic: a seeded generator makes the faults reproducible.
    rng = random.Random(faults.seed)  # noqa: S311
    queue: list[tuple[datetime, int, CallEvent]] = []
    seq = 0
    for event in events:
        at = event.occurred_at
        send_at = at
        if rng.random() < faults.late:
            send_at += _delay(rng, *faults.late_delay)
        elif rng.random() < faults.reorder:
            # sent after the events of the next seconds: a swap within the window
            send_at += _delay(rng, 0.001, faults.reorder_window)
        sends = [send_at]
        if rng.random() < faults.duplicates:
            sends.append(send_at + _delay(rng, *faults.duplicate_delay))
        for when in sends:
            heapq.heappush(queue, (when, seq, event))
            seq += 1
        # Later events are sent no earlier than their own time, so everything up to `at` is final.
        while queue and queue[0][0] <= at:
            when, _, ready = heapq.heappop(queue)
            yield Scheduled(when, ready)
    while queue:
        when, _, ready = heapq.heappop(queue)
        yield Scheduled(when, ready)


def dedupe(events: Iterable[CallEvent]) -> list[CallEvent]:
    """The events with the first copy of each event_id kept, in order."""
    seen: set[str] = set()
    out = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            out.append(event)
    return out
