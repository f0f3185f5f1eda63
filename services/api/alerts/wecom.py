"""WeCom (企业微信) group robot: `{"msgtype": "markdown", "markdown": {"content": …}}`; the robot
answers `{"errcode": 0, "errmsg": "ok"}`, errors with HTTP 200 and another errcode."""

from __future__ import annotations

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

CONTENT_MAX_BYTES = 4096


def truncate_bytes(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, cut on a character boundary."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


def body(alert: Alert, public_url: str | None = None) -> dict[str, object]:
    """The markdown message."""
    content = truncate_bytes(messages.markdown(alert, public_url), CONTENT_MAX_BYTES)
    return {"msgtype": "markdown", "markdown": {"content": content}}


class WeComSender:
    """POSTs to `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…` (the key is in the URL)."""

    def request(self, channel: Channel, alert: Alert, ctx: SendContext) -> Outgoing:
        """The POST."""
        return Outgoing(channel.url, json_bytes(body(alert, ctx.public_url)), dict(JSON_HEADERS))

    def check(self, response: httpx.Response) -> None:
        """errcode 0 is accepted."""
        check_error_code(response, "errcode")
