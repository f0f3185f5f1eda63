"""The delivery dispatcher: claims due deliveries, sends them, records the outcome.

Every replica runs one. A claim counts the attempt and hides the delivery for a lease longer
than any attempt can take; replicas claim disjoint deliveries (`FOR UPDATE SKIP LOCKED`). A
failed attempt is retried with exponential backoff and jitter, up to the configured attempts,
then the delivery is marked failed. A replica that dies mid-send leaves its claim to expire and
another one sends again: delivery is at least once, with a stable `webhook-id` for receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import httpx
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.alerts import Alert
from services.api.alerts.alertmanager import AlertmanagerSender
from services.api.alerts.channels import Channel, default_channels
from services.api.alerts.dingtalk import DingTalkSender
from services.api.alerts.feishu import FeishuSender
from services.api.alerts.sender import DeliveryError, SendContext, Sender
from services.api.alerts.slack import SlackSender
from services.api.alerts.webhook import WebhookSender
from services.api.alerts.wecom import WeComSender
from services.api.config import ApiSettings
from services.api.db import repository
from services.api.db.models import utcnow
from services.api.metrics import AlertMetrics

log = structlog.get_logger(__name__)

SENDERS: Mapping[str, Sender] = {
    "webhook": WebhookSender(),
    "slack": SlackSender(),
    "wecom": WeComSender(),
    "dingtalk": DingTalkSender(),
    "feishu": FeishuSender(),
    "alertmanager": AlertmanagerSender(),
}

Clock = Callable[[], datetime]


def backoff(attempts: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base·2^(n-1), capped, then
    scaled by a random factor in [0.5, 1) so replicas and channels do not retry in step."""
    delay = min(cap, base * float(2 ** max(0, attempts - 1)))
    return delay * (0.5 + rand() / 2)


def parse_channels(stored: list[dict[str, object]]) -> list[Channel]:
    """Stored channels that still validate (a malformed one is skipped, and logged)."""
    channels = []
    for item in stored:
        try:
            channels.append(Channel.model_validate(item))
        except ValidationError:
            log.warning("alert_channel_invalid", type=item.get("type"))
    return channels


class Dispatcher:
    """Sends pending deliveries; `wake()` after adding some, otherwise it polls."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: ApiSettings,
        *,
        metrics: AlertMetrics | None = None,
        senders: Mapping[str, Sender] = SENDERS,
        clock: Clock = utcnow,
        batch_size: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sessions, self.settings, self.metrics = sessions, settings, metrics
        self.senders, self.clock, self.batch_size = senders, clock, batch_size
        self.transport = transport
        """The HTTP transport (tests may set an `httpx.MockTransport` before start)."""
        self.lease = timedelta(seconds=max(60.0, 6 * settings.ALERT_DELIVERY_TIMEOUT_SECONDS))
        self._rand = random.Random()  # noqa: S311 - retry jitter, not cryptography
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    def client(self) -> httpx.AsyncClient:
        """A new HTTP client with the delivery timeout; redirects are not followed."""
        return httpx.AsyncClient(
            timeout=self.settings.ALERT_DELIVERY_TIMEOUT_SECONDS,
            transport=self.transport,
            headers={"user-agent": "callpulse-alerts"},
        )

    async def start(self) -> None:
        """Start sending in the background."""
        self._client = self.client()
        self._task = asyncio.create_task(self._run(), name="alert-dispatcher")

    async def stop(self) -> None:
        """Stop sending; claimed deliveries not finished are retried after their lease."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        """Look for due deliveries now."""
        self._wake.set()

    async def _run(self) -> None:
        assert self._client is not None
        while True:
            self._wake.clear()
            try:
                claimed = await self.dispatch(self._client)
            except Exception as exc:  # the database may be briefly away: try again later
                log.warning("alert_dispatch_failed", error=repr(exc))
                claimed = 0
            if claimed == 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.ALERT_POLL_SECONDS):
                        await self._wake.wait()

    async def dispatch(self, client: httpx.AsyncClient) -> int:
        """Claim one batch of due deliveries and send it with `client`; returns how many were
        claimed (the background loop's step)."""
        now = self.clock()
        async with self.sessions.begin() as session:
            claimed = await repository.claim_deliveries(
                session, now, now + self.lease, self.batch_size
            )
            routes = await self._routes(session, claimed)
        if not claimed:
            return 0
        outcomes = await asyncio.gather(
            *(self._attempt(client, c, routes) for c in claimed), return_exceptions=False
        )
        async with self.sessions.begin() as session:
            for delivery, (channel_type, error, retryable) in zip(claimed, outcomes, strict=True):
                await self._finish(session, delivery, channel_type, error, retryable)
        return len(claimed)

    async def _routes(
        self, session: AsyncSession, claimed: list[repository.ClaimedDelivery]
    ) -> dict[str | None, dict[str, Channel]]:
        """The channels each claimed delivery's team can use, by channel key."""
        defaults = {c.key: c for c in default_channels(self.settings)}
        routes: dict[str | None, dict[str, Channel]] = {}
        for delivery in claimed:
            team_id = delivery.payload.get("team_id")
            team = team_id if isinstance(team_id, str) else None
            if team in routes:
                continue
            stored = await repository.get_channels(session, team) if team else None
            routes[team] = {**defaults, **{c.key: c for c in parse_channels(stored or [])}}
        return routes

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        delivery: repository.ClaimedDelivery,
        routes: dict[str | None, dict[str, Channel]],
    ) -> tuple[str, str | None, bool]:
        """Send one delivery: (channel type, error or None, whether an error is retryable)."""
        team_id = delivery.payload.get("team_id")
        channel = routes.get(team_id if isinstance(team_id, str) else None, {}).get(
            delivery.channel
        )
        if channel is None:
            return delivery.channel.split(":", 1)[0], "channel no longer configured", False
        started = time.perf_counter()
        try:
            alert = Alert.model_validate(delivery.payload)
            ctx = SendContext(
                now=self.clock(),
                public_url=self.settings.PUBLIC_URL,
                firing_ttl_seconds=self.settings.ALERTMANAGER_FIRING_TTL_SECONDS,
            )
            sender = self.senders[channel.type]
            outgoing = sender.request(channel, alert, ctx)
            response = await client.post(
                outgoing.url, content=outgoing.body, headers=outgoing.headers
            )
            sender.check(response)
        except DeliveryError as exc:
            return channel.type, str(exc), exc.retryable
        except httpx.HTTPError as exc:
            # Transport errors carry no URL (chat-robot URLs hold tokens): the type says enough.
            return channel.type, f"{type(exc).__name__}: {exc}", True
        except Exception as exc:  # a bug must not stop the other deliveries; retried, bounded
            log.exception("alert_delivery_crashed", alert_id=delivery.alert_id)
            return channel.type, f"{type(exc).__name__}: {exc}", True
        finally:
            if self.metrics is not None:
                self.metrics.delivery_duration.labels(channel.type).observe(
                    time.perf_counter() - started
                )
        return channel.type, None, False

    async def _finish(
        self,
        session: AsyncSession,
        delivery: repository.ClaimedDelivery,
        channel_type: str,
        error: str | None,
        retryable: bool,
    ) -> None:
        now = self.clock()
        fields = {
            "alert_id": delivery.alert_id,
            "state": delivery.state,
            "channel": delivery.channel,
            "attempt": delivery.attempts,
        }
        if error is None:
            await repository.finish_delivery(session, delivery, sent_at=now)
            result = "sent"
            log.info("alert_delivered", **fields)
        elif retryable and delivery.attempts < self.settings.ALERT_DELIVERY_MAX_ATTEMPTS:
            delay = backoff(
                delivery.attempts,
                self.settings.ALERT_RETRY_BASE_SECONDS,
                self.settings.ALERT_RETRY_MAX_SECONDS,
                self._rand.random,
            )
            retry_at = now + timedelta(seconds=delay)
            await repository.finish_delivery(session, delivery, error=error, retry_at=retry_at)
            result = "retry"
            log.warning("alert_delivery_retry", error=error, retry_in=round(delay, 1), **fields)
        else:
            await repository.finish_delivery(session, delivery, error=error)
            result = "failed"
            log.error("alert_delivery_failed", error=error, **fields)
        if self.metrics is not None:
            self.metrics.deliveries.labels(channel_type, result).inc()
