"""Slack incoming webhook: `{"text": …, "blocks": [...]}` (Block Kit); Slack answers `ok`."""

from __future__ import annotations

import httpx

from schemas.alerts import Alert
from services.api.alerts import messages
from services.api.alerts.channels import Channel
from services.api.alerts.sender import (
    JSON_HEADERS,
    Outgoing,
    SendContext,
    check_status,
    json_bytes,
)

HEADER_MAX, TEXT_MAX, FIELD_MAX = 150, 3000, 2000


def escape(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body(alert: Alert, public_url: str | None = None) -> dict[str, object]:
    """The message: a fallback `text` (notifications) and blocks (header, both messages, facts)."""
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{escape(label)}*\n{escape(value)}", FIELD_MAX)}
        for label, value in messages.facts(alert)
    ]
    context = f"{escape(messages.headline_zh(alert))} · `{escape(alert.alert_id)}`"
    url = messages.link(public_url, alert)
    if url is not None:
        context += f" · <{url}|callpulse>"
    blocks: list[dict[str, object]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(messages.headline(alert), HEADER_MAX)},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"{escape(alert.message_en)}\n{escape(alert.message_zh)}", TEXT_MAX),
            },
        },
        {"type": "section", "fields": fields[:10]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(context, TEXT_MAX)}]},
    ]
    text = _cut(f"{messages.headline(alert)}: {alert.message_en}", TEXT_MAX)
    return {"text": escape(text), "blocks": blocks}


class SlackSender:
    """POSTs Block Kit JSON to the incoming-webhook URL (the URL is the credential)."""

    def request(self, channel: Channel, alert: Alert, ctx: SendContext) -> Outgoing:
        """The POST."""
        return Outgoing(channel.url, json_bytes(body(alert, ctx.public_url)), dict(JSON_HEADERS))

    def check(self, response: httpx.Response) -> None:
        """Slack answers 200 `ok`; errors are 4xx with a reason such as `invalid_payload`."""
        check_status(response)
