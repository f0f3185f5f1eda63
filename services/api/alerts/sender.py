"""What every channel sender shares: the `Sender` port, the request it builds, and how an answer
is judged (sent, worth retrying, or refused for good)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from schemas.alerts import Alert
from services.api.alerts.channels import Channel

RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""4xx statuses that are about timing, not about the request."""


class DeliveryError(Exception):
    """A delivery attempt that did not succeed; `retryable` False means retrying cannot help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class SendContext:
    """What a sender may need beyond the alert: the time (signatures) and deployment details."""

    now: datetime
    public_url: str | None = None
    firing_ttl_seconds: float = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One HTTP POST to make."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Sender(Protocol):
    """Builds the request of one channel type and judges its answer."""

    def request(self, channel: Channel, alert: Alert, ctx: SendContext) -> Outgoing:
        """The POST that notifies `alert` on `channel`."""
        ...

    def check(self, response: httpx.Response) -> None:
        """Return if the receiver accepted the notification; raise DeliveryError otherwise."""
        ...


def json_bytes(body: Any) -> bytes:
    """Compact UTF-8 JSON (Chinese text stays readable on the wire)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


JSON_HEADERS = {"content-type": "application/json; charset=utf-8"}


def check_status(response: httpx.Response) -> None:
    """2xx passes; 5xx and timing-related 4xx are retryable; other 4xx are final."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    raise DeliveryError(f"HTTP {status}: {_snippet(response)}", retryable=retryable)


def check_error_code(response: httpx.Response, *fields: str) -> None:
    """For chat robots that answer 200 with an error code in the body (0 means accepted)."""
    check_status(response)
    try:
        body = response.json()
    except ValueError as exc:
        raise DeliveryError(f"unreadable answer: {_snippet(response)}") from exc
    if not isinstance(body, dict):
        raise DeliveryError(f"unexpected answer: {_snippet(response)}")
    for name in fields:
        if name in body:
            if body[name] in (0, "0"):
                return
            # Rate limits and signature clock skew are the usual causes: worth retrying.
            raise DeliveryError(f"refused: {_snippet(response)}")
    raise DeliveryError(f"no {'/'.join(fields)} in the answer: {_snippet(response)}")


def _snippet(response: httpx.Response) -> str:
    return response.text[:300].replace("\n", " ")
