"""Feishu (飞书) custom bot: `{"msg_type": "text", "content": {"text": …}}`; with a signing
secret, `timestamp` (seconds, a string) and `sign` in the body,
sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")). The bot answers
`{"code": 0, …}` (older deployments: `{"StatusCode": 0, …}`)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx

from schemas.alerts import Alert
from services.api.alerts import messages
from services.api.alerts.channels import Channel
from services.api.alerts.sender import (
    JSON_HEADERS,
    Outgoing,
    SendContext,
    check_error_code,
    json_bytes,
)


def sign(timestamp: int, secret: str) -> str:
    """The `sign` field: the key is the string to sign, the message is empty."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def body(alert: Alert, public_url: str | None = None) -> dict[str, object]:
    """The text message."""
    return {"msg_type": "text", "content": {"text": messages.plain(alert, public_url)}}


class FeishuSender:
    """POSTs to `https://open.feishu.cn/open-apis/bot/v2/hook/…`, signed when configured."""

    def request(self, channel: Channel, alert: Alert, ctx: SendContext) -> Outgoing:
        """The POST."""
        payload = body(alert, ctx.public_url)
        secret = channel.secret_value()
        if secret is not None:
            timestamp = int(ctx.now.timestamp())
            payload = {"timestamp": str(timestamp), "sign": sign(timestamp, secret), **payload}
        return Outgoing(channel.url, json_bytes(payload), dict(JSON_HEADERS))

    def check(self, response: httpx.Response) -> None:
        """code (or StatusCode) 0 is accepted."""
        check_error_code(response, "code", "StatusCode")
