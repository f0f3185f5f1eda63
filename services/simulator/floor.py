"""A deterministic telesales floor: teams with time zones and shifts, reps, and their calls.

Every rep draws from its own `random.Random` seeded by (seed, rep id), so the log depends only on
the configuration and the start time; `stream` merges the reps' calls into one time-ordered log.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import takewhile
from zoneinfo import ZoneInfo

from schemas.events import CallEvent
from services.simulator.calls import Rep, place_call

# Share of dials a person answers, by local hour of day: low early in the morning, a lunch dip,
# peaks late in the morning and early in the evening.
CONNECT_BY_HOUR: tuple[float, ...] = (
    *(0.03, 0.03, 0.02, 0.02, 0.03, 0.04),  # 00-05
    *(0.06, 0.10, 0.16, 0.22, 0.28, 0.31),  # 06-11
    *(0.24, 0.19, 0.20, 0.22, 0.25, 0.30),  # 12-17
    *(0.33, 0.29, 0.20, 0.12, 0.07, 0.04),  # 18-23
)


@dataclass(frozen=True, slots=True)
class ShiftHours:
    """Working days (ISO weekday, 1 = Monday) and local start and end time (same day)."""

    days: tuple[int, ...] = (1, 2, 3, 4, 5)
    start: time = time(9, 0)
    end: time = time(18, 0)

    def __post_init__(self) -> None:
        if not self.days or not set(self.days) <= set(range(1, 8)):
            raise ValueError("shift days must be ISO weekdays 1-7, at least one")
        if self.start >= self.end:
            raise ValueError("a shift starts before it ends, on the same day")

    def next_on(self, at: datetime, tz: ZoneInfo) -> datetime:
        """`at` when it falls inside a shift, else the start of the next shift (UTC)."""
        local_day = at.astimezone(tz).date()
        for offset in range(8):
            day = local_day + timedelta(days=offset)
            if day.isoweekday() not in self.days:
                continue
            begin = datetime.combine(day, self.start, tzinfo=tz).astimezone(UTC)
            end = datetime.combine(day, self.end, tzinfo=tz).astimezone(UTC)
            if at < begin:
                return begin
            if at < end:
                return at
        raise AssertionError("unreachable: a non-empty week always has a next shift")


@dataclass(frozen=True, slots=True)
class FloorConfig:
    """Everything that shapes the simulated floor; rates are fractions, times are seconds."""

    seed: int = 1
    reps: int = 20
    teams: int = 2
    run_id: str = "sim"
    id_prefix: str = ""  # before team and rep ids, to keep runs on one server apart
    timezones: tuple[str, ...] = ("Europe/London", "America/New_York", "Asia/Shanghai")
    shift: ShiftHours | None = ShiftHours()  # None: the floor works around the clock
    # A rep's pace while nobody picks up; conversations and wrap-up slow the real dial rate down.
    dials_per_hour: float = 40.0
    connect_by_hour: tuple[float, ...] = CONNECT_BY_HOUR
    ring_seconds: tuple[float, float] = (4.0, 28.0)
    talk_median_seconds: float = 150.0
    talk_sigma: float = 0.9
    wrap_up_seconds: tuple[float, float] = (10.0, 60.0)
    conversion_rate: float = 0.12
    deal_median: float = 120.0
    deal_sigma: float = 0.6
    currency: str = "EUR"
    correction_rate: float = 0.02
    csat_rate: float = 0.2
    csat_weights: tuple[float, ...] = (0.04, 0.06, 0.15, 0.35, 0.40)
    inbound_share: float = 0.1
    rep_spread: float = 0.25
    campaigns: tuple[str, ...] = ("renewals", "upsell", "winback")

    def __post_init__(self) -> None:
        if self.reps < 0 or self.teams < 1:
            raise ValueError("need reps >= 0 and teams >= 1")
        if len(self.connect_by_hour) != 24 or len(self.csat_weights) != 5:
            raise ValueError("connect_by_hour needs 24 values and csat_weights 5")
        if not self.timezones or self.dials_per_hour <= 0:
            raise ValueError("need at least one time zone and a positive dial rate")
        for name in ("conversion_rate", "correction_rate", "csat_rate", "inbound_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a fraction in [0, 1]")
        for zone in self.timezones:
            ZoneInfo(zone)  # raises on an unknown zone


@dataclass(frozen=True, slots=True)
class TeamSpec:
    """A simulated team: its id, time zone and reps."""

    team_id: str
    timezone: str
    rep_ids: tuple[str, ...]


def roster(config: FloorConfig) -> list[TeamSpec]:
    """Teams `team-1`... with reps `rep-1-01`... (after `id_prefix`), even sizes, zones cycled."""
    out = []
    for index in range(config.teams):
        size = config.reps // config.teams + (1 if index < config.reps % config.teams else 0)
        width = max(2, len(str(size)))
        team = index + 1
        prefix = config.id_prefix
        rep_ids = tuple(f"{prefix}rep-{team}-{n:0{width}d}" for n in range(1, size + 1))
        zone = config.timezones[index % len(config.timezones)]
        out.append(TeamSpec(team_id=f"{prefix}team-{team}", timezone=zone, rep_ids=rep_ids))
    return out


def rep_timezones(config: FloorConfig) -> dict[str, str]:
    """Each rep's time zone (its team's)."""
    return {rep: team.timezone for team in roster(config) for rep in team.rep_ids}


def _reps(config: FloorConfig) -> list[tuple[Rep, random.Random]]:
    """Every rep with its own generator; skill multipliers are lognormal around 1."""
    out = []
    for t, team in enumerate(roster(config), start=1):
        for n, rep_id in enumerate(team.rep_ids, start=1):
            # Not cryptographic: a seeded generator makes the floor reproducible.
            rng = random.Random(f"{config.seed}/{t}/{n}")  # noqa: S311
            dial, connect, convert, talk = (
                rng.lognormvariate(0.0, config.rep_spread) for _ in range(4)
            )
            rep = Rep(
                rep_id=rep_id,
                team_id=team.team_id,
                tz=ZoneInfo(team.timezone),
                line=f"+1800{t:03d}{n:04d}",
                dial=dial,
                connect=connect,
                convert=convert,
                talk=talk,
            )
            out.append((rep, rng))
    return out


def _next_start(
    config: FloorConfig, rep: Rep, rng: random.Random, after: datetime, free: datetime
) -> datetime:
    """Start of the rep's next dial: exponential gaps at the rep's rate, within the shift."""
    gap = rng.expovariate(config.dials_per_hour * rep.dial / 3600.0)
    at = max(after + timedelta(seconds=gap), free + timedelta(seconds=rng.uniform(2.0, 8.0)))
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    if config.shift is None:
        return at
    on = config.shift.next_on(at, rep.tz)
    # reps log on over the first minutes of a shift, not all at the same millisecond
    return on if on == at else on + timedelta(milliseconds=rng.randrange(300_000))


def stream(config: FloorConfig, start: datetime) -> Iterator[CallEvent]:
    """The floor's events from `start` on, in `occurred_at` order, without end."""
    start = start.astimezone(UTC)
    reps = _reps(config)
    due = [(_next_start(config, rep, rng, start, start), i) for i, (rep, rng) in enumerate(reps)]
    heapq.heapify(due)
    counts = [0] * len(reps)
    events: list[tuple[datetime, int, CallEvent]] = []
    seq = 0
    while due or events:
        # A rep's next call begins at `due` and all its events come later: emit what is earlier.
        while due and (not events or due[0][0] <= events[0][0]):
            at, i = heapq.heappop(due)
            rep, rng = reps[i]
            counts[i] += 1
            call = place_call(config, rep, rng, at, counts[i])
            for event in call.events:
                heapq.heappush(events, (event.occurred_at, seq, event))
                seq += 1
            heapq.heappush(due, (_next_start(config, rep, rng, at, call.busy_until), i))
        yield heapq.heappop(events)[2]


def generate(config: FloorConfig, start: datetime, end: datetime) -> list[CallEvent]:
    """The complete event log of [start, end): calls still running at `end` are cut there."""
    end = end.astimezone(UTC)
    return list(takewhile(lambda event: event.occurred_at < end, stream(config, start)))
