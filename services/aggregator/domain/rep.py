"""Stage 2: one rep's state — sparse time buckets, live status — and its KPI snapshot.

Buckets: per-minute for the last `MINUTE_RETENTION` (rolling windows and the local hour), per local
hour for two days (the hourly connect profile), per local day for `DAY_RETENTION_DAYS` (today,
week, month). A fact carries a call's whole credit to the rep at one version; the rep keeps, per
call (and incarnation), the last version applied and its credit, and applies a newer version as
the difference: facts in any order, duplicated or replayed, give the same buckets. A remembered
credit expires `APPLIED_HORIZON` after it was applied (processing time: an old event redelivered
within the horizon of its first processing is still recognised, however old the call).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from schemas import windows as w
from schemas.kpis import WINDOWS, HourlyPoint, Kpis, RepSnapshot, RepStatus, WindowName
from schemas.roster import AlertRule, Shift, Target
from schemas.targets import progress, shift_fraction
from services.aggregator.domain.calls import RepFact
from services.aggregator.domain.counters import (
    CONNECTS,
    DIALS,
    INBOUND,
    WIDTH,
    Counters,
    derive,
    total,
)

MINUTE_RETENTION = timedelta(hours=2)
HOUR_RETENTION_DAYS = 2
DAY_RETENTION_DAYS = 45
APPLIED_HORIZON = timedelta(hours=26)
WRAP_UP = timedelta(seconds=120)


@dataclass(slots=True)
class RepState:
    """Everything stage 2 keeps for one rep."""

    rep_id: str
    team_id: str | None = None
    minutes: dict[int, Counters] = field(default_factory=dict)
    hours: dict[str, list[int]] = field(default_factory=dict)
    days: dict[str, Counters] = field(default_factory=dict)
    applied: dict[str, list[Any]] = field(default_factory=dict)
    """call@incarnation -> [version, applied at (epoch s), [[counter, at (epoch s), amount]...]]"""
    status: RepStatus = "idle"
    status_since: datetime | None = None
    last_event_at: datetime | None = None
    late_dropped: int = 0
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: dict[str, list[Any]] = field(default_factory=dict)
    """Alert transitions not known to be delivered: `<alert_id>/<state>` -> [queued at (epoch
    s), the alert's JSON]. Saved with the rule state that made them, cleared once delivered, so
    a kill in between neither loses a notification nor sends it twice (its id is stable)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "rep_id": self.rep_id,
            "team_id": self.team_id,
            "minutes": {str(k): v for k, v in self.minutes.items()},
            "hours": self.hours,
            "days": self.days,
            "applied": self.applied,
            "status": self.status,
            "status_since": None if self.status_since is None else self.status_since.isoformat(),
            "last_event_at": None if self.last_event_at is None else self.last_event_at.isoformat(),
            "late_dropped": self.late_dropped,
            "alerts": self.alerts,
            "outbox": self.outbox,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RepState:
        """Inverse of to_dict."""
        return cls(
            rep_id=d["rep_id"],
            team_id=d.get("team_id"),
            minutes={int(k): v for k, v in d.get("minutes", {}).items()},
            hours=dict(d.get("hours", {})),
            days=dict(d.get("days", {})),
            applied=dict(d.get("applied", {})),
            status=d.get("status", "idle"),
            status_since=_dt(d.get("status_since")),
            last_event_at=_dt(d.get("last_event_at")),
            late_dropped=d.get("late_dropped", 0),
            alerts=dict(d.get("alerts", {})),
            outbox=dict(d.get("outbox", {})),
        )


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def apply_fact(rep: RepState, fact: RepFact, tz: ZoneInfo, now: datetime) -> bool:
    """Apply a fact newer than the call's version applied here: add its credit, take back the
    credit of that older version. True when it changed the rep."""
    key = fact.credit_key
    seen = rep.applied.get(key)
    if seen is not None and seen[0] >= fact.version:
        return False
    old = [tuple(atom) for atom in seen[2]] if seen is not None and len(seen) > 2 else []
    new = [(index, at.timestamp(), amount) for index, at, amount in fact.atoms]
    # Remembered from when it was applied, not from the call's time: a backlog of old events, or
    # a replay of them, is deduplicated as long as anything recent.
    rep.applied[key] = [fact.version, int(now.timestamp()), new]
    if fact.team_id is not None:
        rep.team_id = fact.team_id
    for index, at, amount in _difference(old, new):
        _add_atom(rep, index, datetime.fromtimestamp(at, UTC), amount, tz, now)
    if fact.status is not None and (rep.status_since is None or fact.status_at >= rep.status_since):
        rep.status, rep.status_since = fact.status, fact.status_at
    if rep.last_event_at is None or fact.event_at > rep.last_event_at:
        rep.last_event_at = fact.event_at
    return True


StoredAtom = tuple[int, float, int]
"""An atom as a rep remembers it: (counter index, epoch seconds it lands at, amount)."""


def _difference(old: list[StoredAtom], new: list[StoredAtom]) -> list[StoredAtom]:
    """new - old as atoms, cancelling identical pairs so an unchanged credit changes nothing."""
    remaining = list(new)
    out: list[StoredAtom] = []
    for atom in old:
        if atom in remaining:
            remaining.remove(atom)
        else:
            out.append((atom[0], atom[1], -atom[2]))
    return out + remaining


def _add_atom(
    rep: RepState, index: int, at: datetime, amount: int, tz: ZoneInfo, now: datetime
) -> None:
    """Add (or, negative, take back) an amount in every bucket it lands in. Taking back skips a
    bucket that is gone: what was added there has been pruned with it."""
    day = w.local_day(at, tz)
    if day < w.local_day(now, tz) - timedelta(days=DAY_RETENTION_DAYS - 1):
        if amount > 0:
            rep.late_dropped += 1  # older than every window we keep: history only (Postgres)
        return
    _bump(rep.days, day.isoformat(), index, amount, WIDTH)
    if at >= now - MINUTE_RETENTION:
        _bump(rep.minutes, w.epoch_minute(at), index, amount, WIDTH)
    if index in _PROFILE:
        hour_key = at.astimezone(tz).strftime("%Y-%m-%dT%H")
        _bump(rep.hours, hour_key, _PROFILE.index(index), amount, len(_PROFILE))


_PROFILE = (DIALS, CONNECTS, INBOUND)
"""The counters of the hourly profile, in its order."""


def _bump(buckets: dict[Any, list[int]], key: Any, index: int, amount: int, width: int) -> None:
    bucket = buckets.get(key)
    if bucket is None:
        if amount < 0:
            return
        bucket = buckets[key] = [0] * width
    bucket[index] += amount


def prune(rep: RepState, tz: ZoneInfo, now: datetime) -> None:
    """Drop buckets and remembered versions past their retention (bounded memory per rep)."""
    oldest_minute = w.epoch_minute(now - MINUTE_RETENTION)
    for minute in [m for m in rep.minutes if m < oldest_minute]:
        del rep.minutes[minute]
    today = w.local_day(now, tz)
    oldest_day = (today - timedelta(days=DAY_RETENTION_DAYS - 1)).isoformat()
    for day in [d for d in rep.days if d < oldest_day]:
        del rep.days[day]
    oldest_hour = (today - timedelta(days=HOUR_RETENTION_DAYS - 1)).isoformat()
    for hour in [h for h in rep.hours if h < oldest_hour]:
        del rep.hours[hour]
    horizon = int((now - APPLIED_HORIZON).timestamp())
    for key in [k for k, seen in rep.applied.items() if seen[1] < horizon]:
        del rep.applied[key]


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Where one window starts and ends at a given minute, and which buckets it sums."""

    window: WindowName
    start: datetime
    end: datetime
    days: frozenset[str]  # local-day bucket keys (calendar windows)
    minutes: tuple[int, int] | None  # first and last epoch minute (minute-based windows)


@lru_cache(maxsize=256)
def window_plans(tz: ZoneInfo, minute: int) -> tuple[WindowPlan, ...]:
    """Every window's plan during one epoch minute (bounds and bucket keys do not change
    within a minute), so a burst of snapshots computes them once per time zone."""
    now = datetime.fromtimestamp(minute * 60, UTC)
    plans = []
    for window in WINDOWS:
        start, end = w.bounds(window, now, tz)
        if window in w.CALENDAR:
            keys = frozenset(d.isoformat() for d in w.day_keys(window, now, tz))
            plans.append(WindowPlan(window, start, end, keys, None))
        else:
            span = w.minute_range(window, now, tz)
            plans.append(WindowPlan(window, start, end, frozenset(), (span.start, span.stop - 1)))
    return tuple(plans)


def plan_counters(rep: RepState, plan: WindowPlan) -> Counters:
    """The summed counters of one planned window (looks up the window's keys, or walks the
    rep's sparse buckets when it has fewer)."""
    if plan.minutes is None:
        days = rep.days
        if len(plan.days) < len(days):
            buckets = [days[key] for key in plan.days if key in days]
        else:
            buckets = [bucket for key, bucket in days.items() if key in plan.days]
    else:
        first, last = plan.minutes
        minutes = rep.minutes
        if last - first < len(minutes):
            buckets = [minutes[key] for key in range(first, last + 1) if key in minutes]
        else:
            buckets = [bucket for key, bucket in minutes.items() if first <= key <= last]
    if len(buckets) == 1:
        return list(buckets[0])
    return total(buckets)


@lru_cache(maxsize=8192)
def window_kpis(plan: WindowPlan, counters: tuple[int, ...]) -> Kpis:
    """One window's KPIs (frozen, so shared: many reps' windows, and a rep's windows from one
    snapshot to the next, sum to the same counters within a minute)."""
    return Kpis(
        window=plan.window, window_start=plan.start, window_end=plan.end, **derive(counters)
    )


def status_now(rep: RepState, now: datetime) -> tuple[RepStatus, datetime | None]:
    """Live status: wrap-up turns idle after `WRAP_UP` without a new call."""
    if (
        rep.status == "wrap_up"
        and rep.status_since is not None
        and now - rep.status_since > WRAP_UP
    ):
        return "idle", rep.status_since + WRAP_UP
    return rep.status, rep.status_since


@dataclass(frozen=True, slots=True)
class Context:
    """What the roster says about a rep at snapshot time."""

    timezone: str = "UTC"
    team_id: str | None = None
    rep_name: str | None = None
    shift: Shift = field(default_factory=Shift)
    targets: tuple[Target, ...] = ()
    alert_rules: tuple[AlertRule, ...] = ()


def hourly_profile(rep: RepState) -> list[HourlyPoint]:
    """Dials, connects and outbound connect rate by local hour of day, over the kept hours."""
    sums: dict[int, list[int]] = {}
    for key, (dials, connects, inbound) in rep.hours.items():
        point = sums.setdefault(int(key[-2:]), [0, 0])
        point[0] += dials
        point[1] += connects - inbound
    return [
        HourlyPoint(hour=h, dials=d, connects=c, connect_rate=None if d == 0 else round(c / d, 6))
        for h, (d, c) in sorted(sums.items())
    ]


def snapshot(rep: RepState, ctx: Context, now: datetime, lag_seconds: float) -> RepSnapshot:
    """The rep's KPIs for every window at `now`, with status and target progress."""
    tz = ZoneInfo(ctx.timezone)
    values: dict[str, Kpis] = {
        plan.window: window_kpis(plan, tuple(plan_counters(rep, plan)))
        for plan in window_plans(tz, w.epoch_minute(now))
    }
    status, since = status_now(rep, now)
    return RepSnapshot(
        rep_id=rep.rep_id,
        team_id=ctx.team_id or rep.team_id,
        rep_name=ctx.rep_name,
        timezone=ctx.timezone,
        status=status,
        status_since=since,
        as_of=now,
        lag_seconds=round(max(0.0, lag_seconds), 3),
        last_event_at=rep.last_event_at,
        windows=values,
        targets=progress(ctx.targets, values, shift_fraction(ctx.shift, now, tz))
        if ctx.targets
        else [],
        hourly=hourly_profile(rep),
    )


def signature(snap: RepSnapshot) -> int:
    """What a wallboard would see change: every value, but not the time of computing it nor
    the bounds of windows (rolling ones move every minute without any number changing).

    A hash of the values (cheap to keep per rep): the snapshot's fields but `as_of` and
    `lag_seconds`, each window's fields after its name and bounds, every target's and hourly
    point's fields (tests/unit/aggregator/test_signature.py holds it to the models)."""
    return hash(
        (
            snap.rep_id,
            snap.team_id,
            snap.rep_name,
            snap.timezone,
            snap.status,
            snap.status_since,
            snap.last_event_at,
            tuple((k.window, *tuple(k.__dict__.values())[3:]) for k in snap.windows.values()),
            tuple(tuple(t.__dict__.values()) for t in snap.targets),
            tuple(tuple(p.__dict__.values()) for p in snap.hourly),
        )
    )
