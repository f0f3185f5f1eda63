"""Scheduled digests: each replica looks for digests that are due at the teams' local times
and sends the ones it claims.

Exactly once per team, kind and period: the claim is a row whose primary key is (team, kind,
period), inserted before anything is sent; the replica whose INSERT succeeds sends, every other
replica and every later tick or restart finds the row and does nothing. A replica that dies
between its claim and the send loses that digest (at most once, never twice); the row says
`sending` and no later replica retries it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.coaching import (
    Digest,
    DigestCompetition,
    DigestKind,
    DigestSettings,
    Language,
    Period,
)
from services.api.alerts.channels import Channel
from services.api.coaching import delivery
from services.api.coaching import digest as digests
from services.api.coaching import repository as repo
from services.api.coaching.service import CoachingService
from services.api.config import ApiSettings

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
ChannelsOf = Callable[[str], Awaitable[list[Channel]]]
PERIOD: dict[DigestKind, Period] = {"daily": "day", "weekly": "week"}


def clock_of(settings: ApiSettings) -> Clock:
    """Now, or (tests) a clock that starts at DIGEST_CLOCK_START and runs at real speed."""
    start = settings.DIGEST_CLOCK_START
    if start is None:
        return lambda: datetime.now(UTC)
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


@dataclass(frozen=True, slots=True)
class Due:
    """A digest whose time has come: its kind, period key and due time."""

    kind: DigestKind
    key: str
    day: date
    at: datetime


def due(settings: DigestSettings, local: datetime) -> list[Due]:
    """The digests due at a team-local time: today's daily after `daily_at`, this week's weekly
    on `weekly_day` after `weekly_at`."""
    if not settings.enabled:
        return []
    today, zone = local.date(), local.tzinfo
    out = []
    if settings.daily and local.time() >= settings.daily_at:
        at = datetime.combine(today, settings.daily_at, tzinfo=zone)
        out.append(Due("daily", today.isoformat(), today, at))
    if (
        settings.weekly
        and local.isoweekday() == settings.weekly_day
        and local.time() >= settings.weekly_at
    ):
        year, week, _ = today.isocalendar()
        at = datetime.combine(today, settings.weekly_at, tzinfo=zone)
        out.append(Due("weekly", f"{year}-W{week:02d}", today, at))
    return out


class DigestScheduler:
    """Claims and sends due digests every DIGEST_POLL_SECONDS."""

    def __init__(
        self,
        settings: ApiSettings,
        sessions: async_sessionmaker[AsyncSession],
        coaching: CoachingService,
        channels_of: ChannelsOf,
        clock: Clock,
    ) -> None:
        self.settings, self.sessions, self.coaching = settings, sessions, coaching
        self.channels_of, self.clock = channels_of, clock
        self.transport: httpx.AsyncBaseTransport | None = None
        self.retry_seconds = 1.0

    async def compose(
        self, team_id: str, kind: DigestKind, day: date, language: Language, at: datetime
    ) -> Digest:
        """The digest of a team for the period of `day` (without sending it)."""
        scores = await self.coaching.team_scores(team_id, PERIOD[kind], day)
        key = day.isoformat()
        if kind == "weekly":
            year, week, _ = day.isocalendar()
            key = f"{year}-W{week:02d}"
        async with self.sessions() as session:
            ended = await repo.competition_results(
                session, team_id, scores.data.members, scores.period.start, scores.period.end
            )
        competitions = [
            DigestCompetition(competition_id=c, name=n, period_key=p, winners=w)
            for c, n, p, w in ended
        ]
        return digests.build(scores, kind, key, language, at, competitions)

    async def tick(self) -> list[Digest]:
        """Send every due digest this replica claims; returns them."""
        now = self.clock()
        async with self.sessions() as session:
            configured = await repo.digest_settings(session)
        sent = []
        for team_id, raw in sorted(configured.items()):
            settings = DigestSettings.model_validate(raw)
            zone = ZoneInfo(await self.coaching.timezone(team_id))
            for item in due(settings, now.astimezone(zone)):
                async with self.sessions.begin() as session:
                    claimed = await repo.claim_digest(session, team_id, item.kind, item.key, now)
                if claimed:
                    digest = await self.compose(
                        team_id, item.kind, item.day, settings.language, item.at
                    )
                    await self.send(digest, settings, now)
                    sent.append(digest)
        return sent

    async def send(self, digest: Digest, settings: DigestSettings, now: datetime) -> None:
        """Deliver a claimed digest to the team's channels and mailboxes; record the outcome."""
        errors: list[str] = []
        if settings.channels:
            channels = await self.channels_of(digest.team_id)
            timeout = self.settings.ALERT_DELIVERY_TIMEOUT_SECONDS
            async with httpx.AsyncClient(timeout=timeout, transport=self.transport) as client:
                for channel in channels:
                    # signed at the wall-clock time: receivers check it against theirs
                    signed_at = datetime.now(UTC)
                    error = await delivery.post(
                        client, channel, digest, signed_at, self.retry_seconds
                    )
                    if error is not None:
                        errors.append(f"{channel.key}: {error}")
        error = await delivery.mail(self.settings, digest, settings.emails)
        if error is not None:
            errors.append(f"smtp: {error}")
        async with self.sessions.begin() as session:
            await repo.finish_digest(
                session,
                digest.team_id,
                digest.kind,
                digest.period_key,
                payload=digest.model_dump(mode="json"),
                sent_at=None if errors else now,
                error="; ".join(errors) or None,
            )
        log.info("digest_sent", digest_id=digest.digest_id, errors=len(errors))

    async def run(self) -> None:
        """Tick until cancelled; a failed tick is logged and retried at the next one."""
        while True:
            try:
                await self.tick()
            except Exception as exc:  # the database may be briefly away: try again later
                log.warning("digest_tick_failed", error=repr(exc))
            await asyncio.sleep(self.settings.DIGEST_POLL_SECONDS)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[DigestScheduler]:
        """Run the ticks in the background while the context is open."""
        task = asyncio.create_task(self.run())
        try:
            yield self
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
