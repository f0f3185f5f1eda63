"""Sending a digest: to the team's alert channels (signed webhook with the Digest JSON, Slack,
WeCom, DingTalk, Feishu; Alertmanager takes alerts, not news) and by e-mail over SMTP."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage

import httpx

from schemas.coaching import Digest
from services.api.alerts import notices
from services.api.alerts.channels import Channel
from services.api.alerts.sender import DeliveryError, Outgoing
from services.api.config import ApiSettings

ATTEMPTS = 3


def message_id(digest: Digest) -> str:
    """The `webhook-id`: the same on every retry and replica, so receivers can drop duplicates."""
    return notices.message_id(digest.digest_id)


def request(channel: Channel, digest: Digest, now: datetime) -> Outgoing | None:
    """The POST that sends `digest` on `channel` (None for Alertmanager)."""
    text = digest.text
    notice = notices.Notice(digest.digest_id, digest.model_dump_json(), digest.title, text, text)
    return notices.request(channel, notice, now)


check = notices.check
"""Judge the receiver's answer as the alert senders do."""


async def post(
    client: httpx.AsyncClient, channel: Channel, digest: Digest, now: datetime, pause: float
) -> str | None:
    """Send on one channel with a few attempts; the last error, or None when it was accepted."""
    outgoing = request(channel, digest, now)
    if outgoing is None:
        return None
    error: str | None = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = await client.post(
                outgoing.url, content=outgoing.body, headers=outgoing.headers
            )
            check(channel, response)
        except DeliveryError as exc:
            error = str(exc)
            if not exc.retryable:
                return error
        except httpx.HTTPError as exc:
            error = repr(exc)
        else:
            return None
        await asyncio.sleep(pause * attempt)
    return error


def email(settings: ApiSettings, digest: Digest, to: Sequence[str]) -> EmailMessage:
    """The digest as a plain-text e-mail (UTF-8)."""
    message = EmailMessage()
    message["Subject"] = digest.title
    message["From"] = settings.SMTP_FROM
    message["To"] = ", ".join(to)
    message["Message-ID"] = f"<{message_id(digest)}@callpulse>"
    message.set_content(digest.text)
    return message


def _send_mail(settings: ApiSettings, message: EmailMessage) -> None:
    assert settings.SMTP_HOST is not None
    with smtplib.SMTP(
        settings.SMTP_HOST, settings.SMTP_PORT, timeout=settings.SMTP_TIMEOUT_SECONDS
    ) as smtp:
        smtp.ehlo()
        if settings.SMTP_STARTTLS and smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
        if settings.SMTP_USERNAME and settings.SMTP_PASSWORD is not None:
            smtp.login(settings.SMTP_USERNAME, settings.SMTP_PASSWORD.get_secret_value())
        smtp.send_message(message)


async def mail(settings: ApiSettings, digest: Digest, to: Sequence[str]) -> str | None:
    """E-mail the digest (smtplib in a thread); the error, or None when the server took it."""
    if not to:
        return None
    if settings.SMTP_HOST is None:
        return "no SMTP server configured (CALLPULSE_SMTP_HOST)"
    try:
        await asyncio.to_thread(_send_mail, settings, email(settings, digest, to))
    except (OSError, smtplib.SMTPException) as exc:
        return repr(exc)
    return None
