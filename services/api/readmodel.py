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


def progress(kpi: str, window: WindowName, target: float, kpis: Kpis) -> TargetProgress:
    """Progress of one KPI of `kpis` against a target value."""
    value = getattr(kpis, kpi, None)
    return TargetProgress(
        kpi=kpi,
        window=window,
        target=target,
        value=value,
        progress=None if value is None else round(value / target, 6),
        met=value is not None and value >= target,
    )


@dataclass(frozen=True, slots=True)
class RepView:
    """One rep's KPIs over one window, as served now."""

    snapshot: RepSnapshot
    kpis: Kpis
    lag_seconds: float
    age_seconds: float
    targets: list[TargetProgress]


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


@dataclass(slots=True)
class _Entry:
    snapshot: RepSnapshot
    delivery_seconds: float


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
    """Latest snapshot per rep, team index and SSE fan-out; all methods run on the event loop."""

    clock: Clock = utcnow
    default_timezone: str = "UTC"
    _reps: dict[str, _Entry] = field(default_factory=dict)
    _teams: dict[str, set[str]] = field(default_factory=dict)
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
        self._reps[snapshot.rep_id] = _Entry(snapshot, max(0.0, delay))
        if snapshot.team_id is not None:
            self._teams.setdefault(snapshot.team_id, set()).add(snapshot.rep_id)
        self._fan_out(snapshot, snapshot.team_id)
        return True

    def remove(self, rep_id: str) -> None:
        """Forget a rep (its snapshot key was deleted)."""
        entry = self._reps.pop(rep_id, None)
        team_id = entry.snapshot.team_id if entry else None
        if team_id is not None and team_id in self._teams:
            self._teams[team_id].discard(rep_id)
            if not self._teams[team_id]:
                del self._teams[team_id]

    def publish_alert(self, alert: Alert, seq: int | None = None) -> None:
        """Send an alert transition (with its stored seq, when it has one) to its team's
        subscribers."""
        self._fan_out(AlertEvent(alert, seq), alert.team_id)

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
        rep_ids = self._teams.get(team_id)
        if not rep_ids:
            return None
        now = now or self.clock()
        rows = [self._view(self._reps[r], window, now) for r in sorted(rep_ids)]
        timezone = rows[0].snapshot.timezone
        start, end = windows.bounds(window, now, timezone)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.snapshot.status] = counts.get(row.snapshot.status, 0) + 1
        return TeamView(
            team_id=team_id,
            timezone=timezone,
            totals=combine([r.kpis for r in rows], window=window, start=start, end=end),
            reps=rows,
            as_of=max(r.snapshot.as_of for r in rows),
            lag_seconds=max(r.lag_seconds for r in rows),
            status_counts=counts,
        )

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

    def _view(self, entry: _Entry, window: WindowName, now: datetime) -> RepView:
        snap = entry.snapshot
        kpis = windows.current(snap.windows.get(window), window, now, snap.timezone)
        return RepView(
            snapshot=snap,
            kpis=kpis,
            lag_seconds=round(snap.lag_seconds + entry.delivery_seconds, 3),
            age_seconds=round(max(0.0, (now - snap.as_of).total_seconds()), 3),
            targets=[_current_progress(t, snap, now) for t in snap.targets],
        )


def _meets(kpis: Kpis, floors: Mapping[str, float]) -> bool:
    for kpi, minimum in floors.items():
        value = getattr(kpis, kpi)
        if value is None or value < minimum:
            return False
    return True


def _current_progress(target: TargetProgress, snap: RepSnapshot, now: datetime) -> TargetProgress:
    # Progress computed for a window that has since ended restarts from the empty window.
    held = snap.windows.get(target.window)
    current = windows.current(held, target.window, now, snap.timezone)
    if current is held:
        return target
    return progress(target.kpi, target.window, target.target, current)
