"""Prometheus Alertmanager, API v2: `POST /api/v2/alerts` with a list of one postable alert.

Labels identify the alert (Alertmanager merges posts with equal labels): alertname, alert_id,
rule, kind, rep_id, team_id, kpi, window, severity. A firing alert is posted with an `endsAt`
`firing_ttl` ahead (Alertmanager would otherwise resolve it after its resolve_timeout, as it
expects clients to re-post firing alerts); the resolved transition posts `endsAt` = resolved_at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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

SEVERITY = {"threshold": "warning", "pace": "warning", "idle": "warning", "missed": "info"}


def rfc3339(at: datetime) -> str:
    """UTC with a `Z`, as Alertmanager's examples write it."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alertname(alert: Alert) -> str:
    """`CallpulsePace`, `CallpulseIdle`…: one name per kind of rule."""
    return "Callpulse" + alert.kind.capitalize()


def labels(alert: Alert) -> dict[str, str]:
    """The identifying labels (empty ones are left out)."""
    out = {
        "alertname": alertname(alert),
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "kind": alert.kind,
        "rep_id": alert.rep_id,
        "team_id": alert.team_id or "",
        "kpi": alert.kpi,
        "window": alert.window,
        "severity": SEVERITY.get(alert.kind, "warning"),
        "service": "callpulse",
    }
    return {name: value for name, value in out.items() if value}


def body(alert: Alert, ctx: SendContext) -> list[dict[str, object]]:
    """The postable alert list."""
    if alert.state == "resolved":
        # Never in the future: Alertmanager treats an alert whose endsAt is still ahead as
        # firing and then keeps the firing notice's longer endsAt, so it would never resolve.
        ends_at = min(alert.resolved_at or alert.at, ctx.now)
    else:
        ends_at = max(ctx.now, alert.fired_at) + timedelta(seconds=ctx.firing_ttl_seconds)
    posted: dict[str, object] = {
        "labels": labels(alert),
        "annotations": {
            "summary": alert.message_en,
            "summary_zh": alert.message_zh,
            "description": f"{messages.headline(alert)}\n{messages.headline_zh(alert)}",
            "value": messages.number(alert.value),
            "threshold": messages.number(alert.threshold),
        },
        "startsAt": rfc3339(alert.fired_at),
        "endsAt": rfc3339(max(ends_at, alert.fired_at)),
    }
    url = messages.link(ctx.public_url, alert)
    if url is not None:
        posted["generatorURL"] = url
    return [posted]


class AlertmanagerSender:
    """POSTs to `<base URL>/api/v2/alerts`."""

    def request(self, channel: Channel, alert: Alert, ctx: SendContext) -> Outgoing:
        """The POST."""
        url = channel.url.rstrip("/") + "/api/v2/alerts"
        return Outgoing(url, json_bytes(body(alert, ctx)), dict(JSON_HEADERS))

    def check(self, response: httpx.Response) -> None:
        """200 is accepted; 400 means the alert was invalid (final)."""
        check_status(response)
