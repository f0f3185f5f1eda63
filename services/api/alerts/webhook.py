"""Generic webhook, signed per Standard Webhooks: the Alert JSON as body, `webhook-id`,
`webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>`) headers."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC

import httpx
from standardwebhooks import Webhook

from schemas.alerts import Alert
from services.api.alerts.channels import Channel
from services.api.alerts.sender import JSON_HEADERS, Outgoing, SendContext, check_status


def message_id(alert: Alert) -> str:
    """The `webhook-id` of a transition: the same on every retry and replica, so receivers can
    drop duplicates."""
    digest = hashlib.sha256(f"{alert.alert_id}\n{alert.state}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


class WebhookSender:
    """POSTs the Alert JSON, signed with the channel's `whsec_…` secret."""

    def request(self, channel: Channel, alert: Alert, ctx: SendContext) -> Outgoing:
        """The signed POST."""
        secret = channel.secret_value()
        if secret is None:  # Channel validation requires one; this guards stored rows
            raise ValueError("webhook channel without a secret")
        body = alert.model_dump_json()
        msg_id = message_id(alert)
        now = ctx.now.astimezone(UTC)
        headers = {
            **JSON_HEADERS,
            "webhook-id": msg_id,
            "webhook-timestamp": str(math.floor(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        }
        return Outgoing(channel.url, body.encode(), headers)

    def check(self, response: httpx.Response) -> None:
        """Any 2xx is accepted."""
        check_status(response)
