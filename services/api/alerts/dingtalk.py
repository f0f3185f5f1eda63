"""DingTalk (钉钉) custom robot: markdown message; with a signing secret, `timestamp` (ms) and
`sign` query parameters, sign = base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")),
URL-encoded. The robot answers `{"errcode": 0, "errmsg": "ok"}`."""

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


def sign(timestamp_ms: int, secret: str) -> str:
    """The `sign` parameter before URL encoding (the HTTP client encodes query values)."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def body(alert: Alert, public_url: str | None = None) -> dict[str, object]:
    """The markdown message; `title` is what the conversation list shows."""
    return {
        "msgtype": "markdown",
        "markdown": {
            "title": messages.headline(alert),
            "text": messages.markdown(alert, public_url),
        },
    }


class DingTalkSender:
    """POSTs to `https://oapi.dingtalk.com/robot/send?access_token=…`, signed when configured."""

    def request(self, channel: Channel, alert: Alert, ctx: SendContext) -> Outgoing:
        """The POST, with `timestamp` and `sign` added to the URL's query when there is a secret."""
        url = httpx.URL(channel.url)
        secret = channel.secret_value()
        if secret is not None:
            timestamp = int(ctx.now.timestamp() * 1000)
            # Merged into the query the URL has (access_token), each value percent-encoded.
            url = url.copy_merge_params(
                {"timestamp": str(timestamp), "sign": sign(timestamp, secret)}
            )
        return Outgoing(str(url), json_bytes(body(alert, ctx.public_url)), dict(JSON_HEADERS))

    def check(self, response: httpx.Response) -> None:
        """errcode 0 is accepted."""
        check_error_code(response, "errcode")
