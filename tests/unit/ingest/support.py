"""Test helpers for ingest: an in-memory publisher, a signer and an in-lifespan client."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from nacl.signing import SigningKey
from standardwebhooks import Webhook

from schemas.events import CallEvent
from services.ingest.publisher import PublishUnavailable

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class FakePublisher:
    """Keeps published batches in memory; can be told to be unavailable or to crash."""

    def __init__(self, *, ready: bool = True) -> None:
        self.batches: list[list[CallEvent]] = []
        self.is_ready = ready
        self.fail_with: BaseException | None = None

    @property
    def ready(self) -> bool:
        return self.is_ready

    @property
    def events(self) -> list[CallEvent]:
        return [event for batch in self.batches for event in batch]

    async def publish(self, events: Sequence[CallEvent]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.batches.append(list(events))


def unavailable(retry_after: int = 7) -> PublishUnavailable:
    """The error a publisher raises when Kafka is down."""
    return PublishUnavailable(retry_after, "test: broker down")


def sign(body: bytes, secret: str = SECRET, *, at: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers for `body`."""
    at = at or datetime.now(UTC)
    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def event(**fields: Any) -> dict[str, Any]:
    """A valid call.started event in wire form, overridable field by field."""
    base: dict[str, Any] = {
        "type": "call.started",
        "event_id": "evt-1",
        "call_id": "call-1",
        "occurred_at": "2024-05-06T09:30:00+02:00",
        "rep_id": "rep-7",
        "direction": "outbound",
        "from": "+4930123456",
        "to": "+4930654321",
    }
    base.update(fields)
    return base


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on `app`, inside the app's lifespan."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="https://ingest.test"
        ) as client,
    ):
        yield client


PUBLIC_URL = "https://calls.example.com"
TWILIO_TOKEN = "12345678901234567890123456789012"
VONAGE_SECRET = "vonage-signature-secret-0123456789abcdef"
AIRCALL_TOKEN = "45XXYYZZa08"
FREESWITCH_AUTH = "freeswitch:cdr-pass"
TELNYX_KEY = SigningKey(bytes(range(32)))
TELNYX_PUBLIC_KEY = base64.b64encode(bytes(TELNYX_KEY.verify_key)).decode()

PROVIDER_SECRETS: dict[str, Any] = {
    "PUBLIC_URL": PUBLIC_URL,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "TELNYX_PUBLIC_KEY": TELNYX_PUBLIC_KEY,
    "VONAGE_SIGNATURE_SECRET": VONAGE_SECRET,
    "AIRCALL_TOKEN": AIRCALL_TOKEN,
    "FREESWITCH_BASIC_AUTH": FREESWITCH_AUTH,
}
"""Settings that enable every provider adapter."""
