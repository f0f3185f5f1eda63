"""News on a team's alert channels (digests, competition announcements): one message in each
channel's own format, signed as the alert senders sign and judged as they judge the answer.
Alertmanager takes alerts, not news: it gets none."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from services.api.alerts import dingtalk, feishu
from services.api.alerts.channels import Channel
from services.api.alerts.sender import (
    JSON_HEADERS,
    DeliveryError,
    Outgoing,
    check_error_code,
    check_status,
    json_bytes,
)
from services.api.alerts.wecom import CONTENT_MAX_BYTES, truncate_bytes


@dataclass(frozen=True, slots=True)
class Notice:
    """One piece of news, in the forms the channels take."""

    key: str
    """Its stable id: the `webhook-id` is derived from it, the same on every retry and replica."""
    document: str
    """The JSON a signed webhook receives."""
    title: str
    text: str
    wecom: str
    """WeCom's markdown (cut to its size limit when sent)."""


def message_id(key: str) -> str:
    """The `webhook-id` of the notice with this key."""
    return f"msg_{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def request(channel: Channel, notice: Notice, sent_at: datetime) -> Outgoing | None:
    """The POST that sends `notice` on `channel` (None for Alertmanager); signatures carry
    `sent_at`, the moment of sending, which receivers check for freshness."""
    if channel.type == "webhook":
        secret = channel.secret_value()
        if secret is None:
            raise DeliveryError("webhook channel without a secret", retryable=False)
        msg_id, at = message_id(notice.key), sent_at.astimezone(UTC)
        headers = {
            **JSON_HEADERS,
            "webhook-id": msg_id,
            "webhook-timestamp": str(math.floor(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, notice.document),
        }
        return Outgoing(channel.url, notice.document.encode(), headers)
    if channel.type == "slack":
        return Outgoing(channel.url, json_bytes({"text": notice.text}), dict(JSON_HEADERS))
    if channel.type == "wecom":
        content = truncate_bytes(notice.wecom, CONTENT_MAX_BYTES)
        body = {"msgtype": "markdown", "markdown": {"content": content}}
        return Outgoing(channel.url, json_bytes(body), dict(JSON_HEADERS))
    if channel.type == "dingtalk":
        url = httpx.URL(channel.url)
        secret = channel.secret_value()
        if secret is not None:
            stamp = int(sent_at.timestamp() * 1000)
            url = url.copy_merge_params(
                {"timestamp": str(stamp), "sign": dingtalk.sign(stamp, secret)}
            )
        markdown = {"msgtype": "markdown", "markdown": {"title": notice.title, "text": notice.text}}
        return Outgoing(str(url), json_bytes(markdown), dict(JSON_HEADERS))
    if channel.type == "feishu":
        payload: dict[str, object] = {"msg_type": "text", "content": {"text": notice.text}}
        secret = channel.secret_value()
        if secret is not None:
            stamp = int(sent_at.timestamp())
            payload = {"timestamp": str(stamp), "sign": feishu.sign(stamp, secret), **payload}
        return Outgoing(channel.url, json_bytes(payload), dict(JSON_HEADERS))
    return None


def check(channel: Channel, response: httpx.Response) -> None:
    """Judge the receiver's answer as the alert senders do."""
    if channel.type in ("wecom", "dingtalk"):
        check_error_code(response, "errcode")
    elif channel.type == "feishu":
        check_error_code(response, "code", "StatusCode")
    else:
        check_status(response)
