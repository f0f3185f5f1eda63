"""The state a month of a 10,000-rep floor leaves in the aggregator, written to its changelogs.

Driving a month of calls (~40 million events) through a worker would take hours, so the bench
writes the tables' changelogs directly with states of the shape a month leaves behind under the
retention rules (domain/rep.py, domain/calls.py), then starts a worker that recovers them:
- per rep: 30 local-day buckets, 2 days of hourly buckets over an 8-h shift, a dozen minute buckets
  of the last 2 h, and the applied versions with their credit of the last 26 h (50 calls a day);
- per call still kept (ended within CALL_RETENTION, 6 h at 50 calls a rep per 8-h shift): the full
  assembled state, cloned from calls the simulator's floor really produced;
- per call forgotten within FORGOTTEN_CALL_RETENTION (2 days): its event ids and times.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.scenarios.floor import floor_events
from services.aggregator.core import CallStage, MemoryStore
from services.aggregator.domain.calls import CallState, Rules
from services.aggregator.domain.counters import INDEX, zero
from services.aggregator.domain.rep import RepState
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.aggregator.packing import dumps, loads

DAYS = 30
CALLS_PER_DAY = 50
SHIFT_HOURS = 8


def kept_calls(reps: int) -> int:
    """Ended calls a floor keeps at once: those of the last CALL_RETENTION of a shift."""
    per_hour = CALLS_PER_DAY / SHIFT_HOURS
    return int(reps * per_hour * Rules().call_retention_seconds / 3600)


def rep_states(reps: int, now: datetime, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """(key, changelog value) of every rep after a month."""
    rng = random.Random(seed)
    return [_rep(f"month-rep-{i:05d}", f"month-team-{i % 50:02d}", now, rng) for i in range(reps)]


def _rep(rep_id: str, team_id: str, now: datetime, rng: random.Random) -> tuple[bytes, bytes]:
    rep = RepState(rep_id=rep_id, team_id=team_id, status="idle", last_event_at=now)
    for back in range(DAYS):
        rep.days[(now.date() - timedelta(days=back)).isoformat()] = _bucket(rng, CALLS_PER_DAY)
    for back in range(2):
        day = now.date() - timedelta(days=back)
        for hour in range(9, 9 + SHIFT_HOURS):
            dials = rng.randint(3, 9)
            rep.hours[f"{day.isoformat()}T{hour:02d}"] = [dials, rng.randint(0, dials), 0]
    minute = int(now.timestamp() // 60)
    for back in rng.sample(range(120), 12):
        rep.minutes[minute - back] = _bucket(rng, 1)
    for call in range(CALLS_PER_DAY):
        at = int((now - timedelta(hours=rng.uniform(0, 26))).timestamp())
        credit = [[INDEX["dials"], at - 300.5, 1], [INDEX["connects"], at - 290.25, 1]]
        credit.append([INDEX["talk_seconds"], at + 0.125, rng.randint(10_000, 600_000)])
        rep.applied[f"{rep_id}-call-{call:03d}@{at * 1000}"] = [rng.randint(1, 4), at, credit]
    return rep_id.encode(), dumps(rep.to_dict())


def _bucket(rng: random.Random, calls: int) -> list[int]:
    bucket = zero()
    connects = rng.randint(0, calls)
    bucket[INDEX["dials"]] = calls
    bucket[INDEX["connects"]] = connects
    bucket[INDEX["talk_seconds"]] = connects * rng.randint(60_000, 600_000)
    bucket[INDEX["conversations"]] = connects // 2
    bucket[INDEX["conversions"]] = connects // 5
    bucket[INDEX["revenue"]] = bucket[INDEX["conversions"]] * rng.randint(100_000, 5_000_000)
    return bucket


def forgotten_calls(reps: int) -> int:
    """Calls forgotten within FORGOTTEN_CALL_RETENTION, whose event ids a floor keeps."""
    return int(reps * CALLS_PER_DAY * Rules().forgotten_retention_seconds / 86400)


def call_states(count: int, reps: int, now: datetime, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """(key, changelog value) of `count` kept calls, cloned from a simulated floor's calls, and
    the forgotten calls of `forgotten_calls(reps)`."""
    rng = random.Random(seed)
    stage = CallStage(MemoryStore(), Rules(), RosterView(), Metrics())
    events = floor_events(4_000, reps=100, prefix="month-")
    batch = [(event, now.timestamp(), 0) for event in events]
    stage.save(stage.assemble(batch))
    states = [CallState.from_dict(loads(raw)) for _, raw in stage.store.items()]
    templates = [s.fields() for s in states if not s.is_open]
    out = []
    for i in range(count):
        state: dict[str, Any] = dict(loads(dumps(rng.choice(templates))))
        call_id = f"month-call-{i:07d}"
        rep_id = f"month-rep-{rng.randrange(reps):05d}"
        last = now - timedelta(seconds=rng.uniform(0, Rules().call_retention_seconds * 0.9))
        state.update(call_id=call_id, rep_id=rep_id, credited_rep=rep_id, prev_rep=rep_id)
        state["seen"] = [f"{call_id}-{n}" for n in range(len(state["seen"]))]
        state["last_event_at"] = state["ended_at"] = last.astimezone(UTC).isoformat()
        out.append((call_id.encode(), dumps(state)))
    for i in range(forgotten_calls(reps)):
        call_id = f"month-gone-{i:07d}"
        at = now - timedelta(seconds=rng.uniform(6 * 3600, Rules().forgotten_retention_seconds))
        seen = [f"{call_id}-{n}" for n in range(4)]
        gone = CallState(call_id, forgotten=True, incarnation=int(at.timestamp() * 1000))
        gone.arrived_at, gone.last_event_at, gone.seen, gone.version = at.timestamp(), at, seen, 4
        out.append((call_id.encode(), dumps(gone.stored())))
    return out
