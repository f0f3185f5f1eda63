"""Alert service: store transitions (history, deliveries), serve them, acknowledge them, and
configure each team's notification channels."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.alerts import Alert
from services.api.alerts.channels import Channel, default_channels
from services.api.alerts.dispatcher import Dispatcher, parse_channels
from services.api.alerts.feed import AlertFeed
from services.api.config import ApiSettings
from services.api.db import repository
from services.api.db.models import AlertDelivery, AlertRow, utcnow
from services.api.metrics import AlertMetrics
from services.api.readmodel import ReadModel
from services.kit.problems import Problem

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
SUBMIT_QUEUE_SIZE = 10_000
RETRY_SECONDS = (0.5, 1, 2, 5)


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    """Where a delivery of one transition stands."""

    channel: str
    state: str
    status: str
    attempts: int
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as stored: its latest transition, acknowledgement and deliveries."""

    alert: Alert
    seq: int
    acked_at: datetime | None
    acked_by: str | None
    updated_at: datetime
    deliveries: list[DeliveryInfo]


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one `record` call changed."""

    new: int
    duplicate: int


@dataclass(frozen=True, slots=True)
class TeamChannels:
    """A team's channels, and whether they are its own or the defaults."""

    team_id: str
    configured: bool
    channels: list[Channel]


def _stored(row: AlertRow, deliveries: list[AlertDelivery]) -> StoredAlert:
    return StoredAlert(
        alert=repository.alert_of(row),
        seq=row.seq,
        acked_at=row.acked_at,
        acked_by=row.acked_by,
        updated_at=row.updated_at,
        deliveries=[
            DeliveryInfo(d.channel, d.state, d.status, d.attempts, d.sent_at, d.last_error)
            for d in deliveries
        ],
    )


class AlertService:
    """Alert history, its SSE feed and delivery. `running()` starts the background parts."""

    def __init__(
        self,
        settings: ApiSettings,
        sessions: async_sessionmaker[AsyncSession],
        readmodel: ReadModel,
        *,
        metrics: AlertMetrics | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings, self.sessions, self.metrics, self.clock = settings, sessions, metrics, clock
        self.feed = AlertFeed(sessions, readmodel, settings.ALERT_POLL_SECONDS)
        self.dispatcher = Dispatcher(sessions, settings, metrics=metrics, clock=clock)
        self.max_age = timedelta(seconds=settings.ALERT_DELIVERY_MAX_AGE_SECONDS)
        self._write = asyncio.Lock()
        self._submitted: asyncio.Queue[Alert] = asyncio.Queue(SUBMIT_QUEUE_SIZE)
        self._writer: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AlertService]:
        """Run the feed, the dispatcher and the writer of `submit()`ted alerts."""
        await self.feed.start()
        await self.dispatcher.start()
        self._writer = asyncio.create_task(self._write_submitted(), name="alert-writer")
        try:
            yield self
        finally:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
            await self.dispatcher.stop()
            await self.feed.stop()

    # --- transitions in -----------------------------------------------------------------

    async def record(self, alerts: Sequence[Alert]) -> Recorded:
        """Store transitions and their deliveries in one transaction, then fan them out.

        Idempotent: a transition already stored (redelivered, or consumed by another replica)
        changes nothing and adds no delivery. A new transition gets one pending delivery per
        channel of its team (its own channels, else the defaults), unless it is older than
        ALERT_DELIVERY_MAX_AGE_SECONDS: history then keeps it without notifying anyone.
        """
        alerts = [a for a in alerts if self._storable(a)]
        if not alerts:
            return Recorded(0, 0)
        new = duplicate = 0
        deliveries = 0
        async with self._write, self.sessions.begin() as session:
            await repository.lock_alerts(session)
            now = self.clock()
            routes: dict[str | None, list[Channel]] = {}
            for alert in alerts:
                seq = await repository.upsert_alert(session, alert, now)
                self._count(alert.state, "duplicate" if seq is None else "new")
                if seq is None:
                    duplicate += 1
                    continue
                new += 1
                if alert.at < now - self.max_age:
                    log.info("alert_too_old_to_notify", alert_id=alert.alert_id, at=alert.at)
                    continue
                if alert.team_id not in routes:
                    routes[alert.team_id] = await self._route(session, alert.team_id)
                keys = [c.key for c in routes[alert.team_id]]
                await repository.add_deliveries(session, alert, keys, now)
                deliveries += len(keys)
        if new:
            log.info("alerts_recorded", new=new, duplicate=duplicate, deliveries=deliveries)
            if deliveries:
                self.dispatcher.wake()
            try:
                await self.feed.pump()
            except Exception as exc:  # stored already; the feed's next poll sends them
                log.warning("alert_feed_pump_failed", error=repr(exc))
        return Recorded(new, duplicate)

    def submit(self, alert: Alert) -> None:
        """Queue a transition for `record` without waiting (an in-process producer's hook).

        Needs `running()`; a full queue drops the transition (logged): the producer's replay
        brings it again after a restart.
        """
        try:
            self._submitted.put_nowait(alert)
        except asyncio.QueueFull:
            log.error("alert_queue_full", alert_id=alert.alert_id)

    async def _write_submitted(self) -> None:
        while True:
            batch = [await self._submitted.get()]
            while not self._submitted.empty() and len(batch) < 500:
                batch.append(self._submitted.get_nowait())
            attempt = 0
            while True:
                try:
                    await self.record(batch)
                    break
                except Exception as exc:  # the database may be briefly away: keep the batch
                    log.warning("alert_record_failed", alerts=len(batch), error=repr(exc))
                    await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                    attempt += 1

    async def _route(self, session: AsyncSession, team_id: str | None) -> list[Channel]:
        stored = await repository.get_channels(session, team_id) if team_id else None
        if stored is None:
            return default_channels(self.settings)
        return parse_channels(stored)

    def _storable(self, alert: Alert) -> bool:
        # A transition the database would refuse must not block the ones after it.
        texts = (alert.alert_id, alert.rule, alert.rep_id, alert.team_id or "", alert.kpi)
        fits = all(len(t) <= n for t, n in zip(texts, (512, 200, 200, 200, 50), strict=True))
        numbers = (alert.threshold, 0.0 if alert.value is None else alert.value)
        clean = not any("\x00" in t for t in (*texts, alert.message_en, alert.message_zh))
        if fits and clean and all(math.isfinite(n) for n in numbers):
            return True
        log.warning("alert_not_storable", alert_id=alert.alert_id[:100])
        self._count(alert.state, "invalid")
        return False

    def _count(self, state: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.transitions.labels(state, outcome).inc()

    # --- reads and acknowledgement --------------------------------------------------------

    async def find(
        self,
        *,
        state: str | None = None,
        team_id: str | None = None,
        rep_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredAlert]:
        """Alerts, newest fired first, with their deliveries."""
        async with self.sessions() as session:
            rows = await repository.list_alerts(
                session, state=state, team_id=team_id, rep_id=rep_id, limit=limit
            )
            deliveries = await repository.deliveries_of(session, [r.alert_id for r in rows])
        return [_stored(row, deliveries.get(row.alert_id, [])) for row in rows]

    async def get(self, alert_id: str) -> StoredAlert | None:
        """One alert, or None."""
        async with self.sessions() as session:
            row = await repository.get_alert(session, alert_id)
            if row is None:
                return None
            deliveries = await repository.deliveries_of(session, [alert_id])
        return _stored(row, deliveries.get(alert_id, []))

    async def ack(self, alert_id: str, by: str) -> StoredAlert:
        """Acknowledge an alert (idempotent: the first acknowledgement is kept)."""
        async with self.sessions.begin() as session:
            row = await repository.ack_alert(session, alert_id, by, self.clock())
            if row is None:
                raise Problem(404, "Not Found", "No alert has this id.")
            deliveries = await repository.deliveries_of(session, [alert_id])
            stored = _stored(row, deliveries.get(alert_id, []))
        log.info("alert_acked", alert_id=alert_id, by=by)
        return stored

    async def since(
        self, after: int, team_id: str | None = None, *, limit: int = 500
    ) -> list[tuple[int, Alert]]:
        """Alerts changed after seq `after`, in seq order, at most `limit` (a page): what an SSE
        client missed, each as it is now."""
        async with self.sessions() as session:
            rows = await repository.alerts_since(session, after, team_id=team_id, limit=limit)
        return [(row.seq, repository.alert_of(row)) for row in rows]

    async def latest_seq(self) -> int:
        """The seq of the latest stored transition."""
        async with self.sessions() as session:
            return await repository.max_alert_seq(session)

    # --- channels ---------------------------------------------------------------------------

    async def channels(self, team_id: str) -> TeamChannels:
        """A team's channels, or the defaults it falls back to."""
        async with self.sessions() as session:
            stored = await repository.get_channels(session, team_id)
        if stored is None:
            return TeamChannels(team_id, False, default_channels(self.settings))
        return TeamChannels(team_id, True, parse_channels(stored))

    async def put_channels(self, team_id: str, channels: Sequence[Channel]) -> TeamChannels:
        """Replace a team's channels (an empty list silences the team)."""
        async with self.sessions.begin() as session:
            await repository.set_channels(session, team_id, [c.stored() for c in channels])
        log.info("alert_channels_set", team_id=team_id, types=[c.type for c in channels])
        return TeamChannels(team_id, True, list(channels))

    async def delete_channels(self, team_id: str) -> TeamChannels:
        """Forget a team's channels: it falls back to the defaults."""
        async with self.sessions.begin() as session:
            await repository.delete_channels(session, team_id)
        return TeamChannels(team_id, False, default_channels(self.settings))
