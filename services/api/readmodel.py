"""The in-memory materialized view of `callpulse.kpis`: what every read and stream is served from.

Each replica holds the latest snapshot of every rep (the whole compacted topic), indexed by team.
Reads never touch Kafka or the database. SSE subscribers get bounded queues; a subscriber that
falls behind is dropped (its client reconnects and is sent the current state), so one slow client
never slows the producer or the other clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.alerts import Alert
from schemas.kpis import KPI_NAMES, Kpis, RepSnapshot, TargetProgress, WindowName, combine
from schemas.targets import target_progress
from services.api import windows

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert transition for the subscribers; `seq` orders stored transitions (the SSE id)."""

    alert: Alert
    seq: int | None = None


Update = RepSnapshot | AlertEvent


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def age_seconds(as_of: datetime, now: datetime) -> float:
    """Seconds since a snapshot was computed, as served (never negative, to the millisecond)."""
    return round(max(0.0, (now - as_of).total_seconds()), 3)


@dataclass(frozen=True, slots=True)
class RepView:
    """One rep's KPIs over one window, as served now.

    `revision` changes with every snapshot kept for the rep; until `valid_until` (a window
    rolling over) every field of a view of the same revision is the same, except `age_seconds`.
    """

    snapshot: RepSnapshot
    kpis: Kpis
    lag_seconds: float
    age_seconds: float
    targets: list[TargetProgress]
    revision: int
    valid_until: datetime


@dataclass(frozen=True, slots=True)
class TeamView:
    """A team's totals over one window and its reps' rows (the wallboard payload)."""

    team_id: str
    timezone: str
    totals: Kpis
    reps: list[RepView]
    as_of: datetime | None
    lag_seconds: float
    status_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class LeaderRow:
    """One ranked rep; equal values share a rank (1, 2, 2, 4)."""

    rank: int
    value: float
    rep: RepView


@dataclass(frozen=True, slots=True)
class TeamSummary:
    """A team's reps (by rep_id) and what of them no window changes: time zone, newest as_of,
    largest lag, reps per live status."""

    rep_ids: tuple[str, ...]
    timezone: str
    as_of: datetime
    lag_seconds: float
    status_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Totals:
    """A team's totals over one window, the answer for any time in [since, until)."""

    kpis: Kpis
    since: datetime
    until: datetime


@dataclass(slots=True)
class _TeamCache:
    """What a team's reads share until one of its reps changes (then it is dropped)."""

    summary: TeamSummary
    totals: dict[WindowName, _Totals] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Entry:
    snapshot: RepSnapshot
    delivery_seconds: float
    revision: int

    @property
    def lag_seconds(self) -> float:
        return round(self.snapshot.lag_seconds + self.delivery_seconds, 3)


class Subscription:
    """One SSE client's bounded queue of updates; None in it means the client was dropped."""

    def __init__(self, team_id: str | None, maxsize: int) -> None:
        self.team_id = team_id
        self.dropped = False
        self._queue: asyncio.Queue[Update | None] = asyncio.Queue(maxsize)

    def wants(self, team_id: str | None) -> bool:
        """True when updates of this team belong to this subscription."""
        return self.team_id is None or self.team_id == team_id

    def offer(self, update: Update) -> bool:
        """Queue an update without waiting; False if the queue is full."""
        try:
            self._queue.put_nowait(update)
        except asyncio.QueueFull:
            return False
        return True

    def drop(self) -> None:
        """End the subscription: pending updates are discarded and the reader sees the end."""
        self.dropped = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def get(self) -> Update | None:
        """The next update, or None once dropped."""
        return await self._queue.get()


@dataclass
class ReadModel:
    """Latest snapshot per rep, team index and SSE fan-out; all methods run on the event loop.

    Team summaries and totals are computed once and kept until a rep of the team changes (or,
    for totals, a window rolls over), so wallboards and scrapes do not add up every rep again.
    """

    clock: Clock = utcnow
    default_timezone: str = "UTC"
    _reps: dict[str, _Entry] = field(default_factory=dict)
    _teams: dict[str, set[str]] = field(default_factory=dict)
    _team_cache: dict[str, _TeamCache] = field(default_factory=dict)
    _revisions: int = 0
    _subscribers: list[Subscription] = field(default_factory=list)
    dropped_subscribers: int = 0

    def __len__(self) -> int:
        return len(self._reps)

    def apply(self, snapshot: RepSnapshot, *, replayed: bool = False) -> bool:
        """Keep `snapshot` unless one as new (by as_of) is held; notify subscribers if kept.

        Redelivered snapshots (a consumer re-reading the topic) change nothing. `replayed`
        marks snapshots read while catching up at start: their delay since `as_of` is the
        replica's start, not pipeline lag, so it is not added to their lag.
        """
        held = self._reps.get(snapshot.rep_id)
        if held is not None and snapshot.as_of <= held.snapshot.as_of:
            return False
        delay = 0.0 if replayed else (self.clock() - snapshot.as_of).total_seconds()
        if held is not None and held.snapshot.team_id != snapshot.team_id:
            self.remove(snapshot.rep_id)
        self._revisions += 1
        self._reps[snapshot.rep_id] = _Entry(snapshot, max(0.0, delay), self._revisions)
        if snapshot.team_id is not None:
            self._teams.setdefault(snapshot.team_id, set()).add(snapshot.rep_id)
            self._team_cache.pop(snapshot.team_id, None)
        self._fan_out(snapshot, snapshot.team_id)
        return True

    def remove(self, rep_id: str) -> None:
        """Forget a rep (its snapshot key was deleted)."""
        entry = self._reps.pop(rep_id, None)
        team_id = entry.snapshot.team_id if entry else None
        if team_id is not None:
            self._team_cache.pop(team_id, None)
        if team_id is not None and team_id in self._teams:
            self._teams[team_id].discard(rep_id)
            if not self._teams[team_id]:
                del self._teams[team_id]

    def publish_alert(self, alert: Alert, seq: int | None = None) -> None:
        """Send an alert transition (with its stored seq, when it has one) to its team's
        subscribers."""
        self._fan_out(AlertEvent(alert, seq), alert.team_id)

    def revision(self, rep_id: str) -> int | None:
        """The revision of a rep's snapshot (see `RepView`), or None if none is held."""
        entry = self._reps.get(rep_id)
        return entry.revision if entry else None

    def snapshot(self, rep_id: str) -> RepSnapshot | None:
        """The latest snapshot of a rep, or None."""
        entry = self._reps.get(rep_id)
        return entry.snapshot if entry else None

    def snapshots(self, team_id: str | None = None) -> list[RepSnapshot]:
        """Latest snapshots of a team's reps (or all reps), by rep_id."""
        ids = self._teams.get(team_id, set()) if team_id is not None else self._reps.keys()
        return [self._reps[rep_id].snapshot for rep_id in sorted(ids)]

    def team_ids(self) -> list[str]:
        """Teams that have at least one rep, sorted."""
        return sorted(self._teams)

    def rep(self, rep_id: str, window: WindowName, now: datetime | None = None) -> RepView | None:
        """A rep's KPIs over `window` as of `now`, or None if no snapshot is held."""
        entry = self._reps.get(rep_id)
        return self._view(entry, window, now or self.clock()) if entry else None

    def team(
        self, team_id: str, window: WindowName, now: datetime | None = None
    ) -> TeamView | None:
        """A team's totals (`schemas.kpis.combine` of its reps) and rows, or None if unknown."""
        cache = self._cached_team(team_id)
        if cache is None:
            return None
        now = now or self.clock()
        summary = cache.summary
        return TeamView(
            team_id=team_id,
            timezone=summary.timezone,
            totals=self._totals(cache, window, now),
            reps=[self._view(self._reps[r], window, now) for r in summary.rep_ids],
            as_of=summary.as_of,
            lag_seconds=summary.lag_seconds,
            status_counts=dict(summary.status_counts),
        )

    def team_summary(self, team_id: str) -> TeamSummary | None:
        """A team's reps (by rep_id), time zone, newest as_of, largest lag and status counts."""
        cache = self._cached_team(team_id)
        return cache.summary if cache else None

    def team_totals(
        self, team_id: str, window: WindowName, now: datetime | None = None
    ) -> Kpis | None:
        """A team's totals over `window` (as in `team`), without its rows."""
        cache = self._cached_team(team_id)
        return self._totals(cache, window, now or self.clock()) if cache else None

    def leaderboard(
        self,
        metric: str,
        window: WindowName,
        *,
        team_id: str | None = None,
        floors: Mapping[str, float] | None = None,
        limit: int = 50,
        now: datetime | None = None,
    ) -> list[LeaderRow]:
        """Reps ranked by `metric` (highest first) among those meeting every quality floor.

        A floor `{"avg_talk_seconds": 120}` excludes reps below it, or with no value at all, so
        nobody wins by rushing calls. Reps whose metric is null (no denominator) are not ranked.
        """
        for name in (metric, *(floors or {})):
            if name not in KPI_NAMES:
                raise ValueError(f"unknown KPI {name!r}")
        now = now or self.clock()
        ids = self._teams.get(team_id, set()) if team_id is not None else self._reps.keys()
        scored: list[tuple[float, RepView]] = []
        for rep_id in ids:
            view = self._view(self._reps[rep_id], window, now)
            value = getattr(view.kpis, metric)
            if value is not None and _meets(view.kpis, floors or {}):
                scored.append((float(value), view))
        scored.sort(key=lambda item: (-item[0], item[1].snapshot.rep_id))
        rows: list[LeaderRow] = []
        for position, (value, view) in enumerate(scored[:limit], start=1):
            tied = rows and rows[-1].value == value
            rows.append(LeaderRow(rank=rows[-1].rank if tied else position, value=value, rep=view))
        return rows

    def subscribe(self, team_id: str | None = None, maxsize: int = 1000) -> Subscription:
        """A new subscription to snapshots and alerts of one team (or all)."""
        subscription = Subscription(team_id, maxsize)
        self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscription (idempotent)."""
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    @property
    def subscriber_count(self) -> int:
        """Current SSE subscriptions."""
        return len(self._subscribers)

    def _fan_out(self, update: Update, team_id: str | None) -> None:
        for subscription in list(self._subscribers):
            if subscription.wants(team_id) and not subscription.offer(update):
                subscription.drop()
                self._subscribers.remove(subscription)
                self.dropped_subscribers += 1

    def _cached_team(self, team_id: str) -> _TeamCache | None:
        cache = self._team_cache.get(team_id)
        if cache is None:
            rep_ids = self._teams.get(team_id)
            if not rep_ids:
                return None
            cache = _TeamCache(_summarize([self._reps[r] for r in sorted(rep_ids)]))
            self._team_cache[team_id] = cache
        return cache

    def _totals(self, cache: _TeamCache, window: WindowName, now: datetime) -> Kpis:
        held = cache.totals.get(window)
        if held is None or not held.since <= now < held.until:
            held = self._add_up(cache.summary, window, now)
            cache.totals[window] = held
        return held.kpis

    def _add_up(self, summary: TeamSummary, window: WindowName, now: datetime) -> _Totals:
        start, end = windows.bounds(window, now, summary.timezone)
        parts: list[Kpis] = []
        until = end
        for rep_id in summary.rep_ids:
            snap = self._reps[rep_id].snapshot
            kpis, rep_until = windows.current_until(
                snap.windows.get(window), window, now, snap.timezone
            )
            parts.append(kpis)
            until = min(until, rep_until)
        totals = combine(parts, window=window, start=start, end=end)
        return _Totals(totals, since=now, until=until)

    def _view(self, entry: _Entry, window: WindowName, now: datetime) -> RepView:
        snap = entry.snapshot
        kpis, until = windows.current_until(snap.windows.get(window), window, now, snap.timezone)
        targets: list[TargetProgress] = []
        for target in snap.targets:
            current, target_until = _current_progress(target, snap, now)
            targets.append(current)
            until = min(until, target_until)
        return RepView(
            snapshot=snap,
            kpis=kpis,
            lag_seconds=entry.lag_seconds,
            age_seconds=age_seconds(snap.as_of, now),
            targets=targets,
            revision=entry.revision,
            valid_until=until,
        )


def _summarize(entries: list[_Entry]) -> TeamSummary:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.snapshot.status] = counts.get(entry.snapshot.status, 0) + 1
    return TeamSummary(
        rep_ids=tuple(e.snapshot.rep_id for e in entries),
        timezone=entries[0].snapshot.timezone,
        as_of=max(e.snapshot.as_of for e in entries),
        lag_seconds=max(e.lag_seconds for e in entries),
        status_counts=counts,
    )


def _meets(kpis: Kpis, floors: Mapping[str, float]) -> bool:
    for kpi, minimum in floors.items():
        value = getattr(kpis, kpi)
        if value is None or value < minimum:
            return False
    return True


def _current_progress(
    target: TargetProgress, snap: RepSnapshot, now: datetime
) -> tuple[TargetProgress, datetime]:
    """The snapshot's progress (the aggregator's, `expected` included) while its window is the
    current one; after the window ended, progress restarts from the empty window.

    The read model holds no roster, so a restarted count's `today` expectation is null (shift
    unknown) until the aggregator's next snapshot: it republishes a rep as soon as the
    expectation moves, so this lasts one refresh at most. Rates keep their target as expected.
    """
    held = snap.windows.get(target.window)
    current, until = windows.current_until(held, target.window, now, snap.timezone)
    if current is held:
        return target, until
    return target_progress(target.kpi, target.window, target.target, current, None), until
