"""Announcements on the teams' alert channels (webhook, Slack, WeCom, DingTalk, Feishu).

Each announcement has a stable id (competition, period, kind, and for lead changes the
rate-limit slot); the replica whose INSERT of that id succeeds sends it, so it goes out once
however many replicas see the same moment. Sending reuses the alert senders' signing and answer
checks; a failed attempt is retried a few times, then recorded as failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.competitions import Announcement
from services.api.alerts import notices
from services.api.alerts.channels import Channel
from services.api.alerts.sender import DeliveryError, Outgoing
from services.api.competitions import repository

log = structlog.get_logger(__name__)

ChannelsOf = Callable[[Sequence[str]], Awaitable[list[Channel]]]
ATTEMPTS = 3


def message_id(announcement: Announcement) -> str:
    """The `webhook-id`: the same on every retry and replica."""
    return notices.message_id(announcement.announcement_id)


def request(channel: Channel, a: Announcement, sent_at: datetime) -> Outgoing | None:
    """The POST that announces `a` on `channel` (None: Alertmanager takes alerts, not news);
    signatures carry `sent_at`, the moment of sending, which receivers check for freshness."""
    text = f"{a.message_en}\n{a.message_zh}"
    wecom = f"### {a.competition}\n{text}"
    notice = notices.Notice(a.announcement_id, a.model_dump_json(), a.competition, text, wecom)
    return notices.request(channel, notice, sent_at)


check = notices.check
"""Judge the receiver's answer as the alert senders do."""


class Announcer:
    """Claims announcements in the database and sends the ones it claimed, in the background."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channels_of: ChannelsOf,
        *,
        timeout: float = 10.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.sessions, self.channels_of = sessions, channels_of
        self.timeout, self.retry_seconds = timeout, retry_seconds
        self.transport: httpx.AsyncBaseTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def announce(self, announcement: Announcement, team_ids: Sequence[str]) -> bool:
        """Send `announcement` to the teams' channels unless it was announced: True if sent
        by this call (in the background)."""
        async with self.sessions.begin() as session:
            claimed = await repository.claim_announcement(
                session,
                announcement.announcement_id,
                announcement.competition_id,
                announcement.kind,
                announcement.model_dump(mode="json"),
                announcement.at,
            )
        if not claimed:
            return False
        log.info(
            "competition_announced",
            competition_id=announcement.competition_id,
            kind=announcement.kind,
            announcement_id=announcement.announcement_id,
        )
        task = asyncio.create_task(self._deliver(announcement, list(team_ids)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _deliver(self, announcement: Announcement, team_ids: list[str]) -> None:
        channels = await self.channels_of(team_ids)
        errors: list[str] = []
        attempts = 0
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
            for channel in channels:
                tries, error = await self._send(client, channel, announcement)
                attempts = max(attempts, tries)
                if error is not None:
                    errors.append(f"{channel.key}: {error}")
        async with self.sessions.begin() as session:
            await repository.finish_announcement(
                session,
                announcement.announcement_id,
                attempts=attempts,
                sent_at=None if errors else announcement.at,
                error="; ".join(errors) or None,
            )

    async def _send(
        self, client: httpx.AsyncClient, channel: Channel, announcement: Announcement
    ) -> tuple[int, str | None]:
        outgoing = request(channel, announcement, datetime.now(UTC))
        if outgoing is None:
            return 0, None
        error: str | None = None
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if attempt > 1:  # a fresh signature time on each attempt
                    outgoing = request(channel, announcement, datetime.now(UTC)) or outgoing
                response = await client.post(
                    outgoing.url, content=outgoing.body, headers=outgoing.headers
                )
                check(channel, response)
            except DeliveryError as exc:
                error = str(exc)
                if not exc.retryable:
                    return attempt, error
            except httpx.HTTPError as exc:
                error = repr(exc)
            else:
                return attempt, None
            await asyncio.sleep(self.retry_seconds * attempt)
        log.warning("competition_announcement_failed", channel=channel.type, error=error)
        return ATTEMPTS, error

    async def drain(self) -> None:
        """Wait for the sends under way (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
