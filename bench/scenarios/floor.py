"""Events of a simulated floor, shared by the scenarios (deterministic per seed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

from schemas.events import CallEvent
from services.simulator.floor import FloorConfig, stream


def floor_events(count: int, *, reps: int, prefix: str, minutes_ago: float = 60) -> list[CallEvent]:
    """The first `count` events of a round-the-clock floor that began `minutes_ago`."""
    config = FloorConfig(seed=7, reps=reps, teams=max(1, reps // 200), shift=None, id_prefix=prefix)
    start = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return list(islice(stream(config, start), count))
