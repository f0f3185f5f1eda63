"""Human-readable notification texts, English then Simplified Chinese.

The sentences themselves come with the alert (`message_en`, `message_zh`, written by the rule
that fired); this adds the headline and the facts every channel shows the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from schemas.alerts import Alert

STATE_EN = {"firing": "FIRING", "resolved": "RESOLVED"}
STATE_ZH = {"firing": "告警", "resolved": "已恢复"}
KIND_ZH = {"threshold": "阈值", "pace": "进度", "idle": "空闲", "missed": "未达标"}


def number(value: float | None) -> str:
    """A value as people read it: integers without decimals, others with two; n/a for null."""
    if value is None:
        return "n/a"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def when(at: datetime) -> str:
    """A timestamp in UTC, to the second."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def headline(alert: Alert) -> str:
    """`[FIRING] pace dials-pace · rep r7 · team north`: state, kind, rule and subject."""
    team = f" · team {alert.team_id}" if alert.team_id else ""
    return f"[{STATE_EN[alert.state]}] {alert.kind} {alert.rule} · rep {alert.rep_id}{team}"


def headline_zh(alert: Alert) -> str:
    """The headline in Chinese."""
    team = f" · 团队 {alert.team_id}" if alert.team_id else ""
    kind = KIND_ZH.get(alert.kind, alert.kind)
    return f"【{STATE_ZH[alert.state]}】{kind} {alert.rule} · 坐席 {alert.rep_id}{team}"


def facts(alert: Alert) -> list[tuple[str, str]]:
    """Label / value pairs: KPI, window, value, threshold, times."""
    rows = [
        ("KPI / 指标", f"{alert.kpi} ({alert.window})"),
        ("Value / 当前值", number(alert.value)),
        ("Threshold / 阈值", number(alert.threshold)),
        ("Fired / 触发", when(alert.fired_at)),
    ]
    if alert.resolved_at is not None:
        rows.append(("Resolved / 恢复", when(alert.resolved_at)))
    return rows


def link(public_url: str | None, alert: Alert) -> str | None:
    """Where the alert can be looked at: the API's alert list for the rep, if the URL is known."""
    if public_url is None:
        return None
    query = urlencode({"rep_id": alert.rep_id})
    return f"{public_url.rstrip('/')}/v1/alerts?{query}"


def plain(alert: Alert, public_url: str | None = None) -> str:
    """The whole notification as plain text."""
    lines = [headline(alert), alert.message_en, "", headline_zh(alert), alert.message_zh, ""]
    lines += [f"{label}: {value}" for label, value in facts(alert)]
    lines.append(f"Alert / 告警编号: {alert.alert_id}")
    url = link(public_url, alert)
    if url is not None:
        lines.append(url)
    return "\n".join(lines)


def markdown(alert: Alert, public_url: str | None = None) -> str:
    """The whole notification as the Markdown subset chat robots render (DingTalk, WeCom)."""
    lines = [
        f"### {headline(alert)}",
        alert.message_en,
        "",
        f"**{headline_zh(alert)}**",
        alert.message_zh,
        "",
    ]
    lines += [f"> {label}: {value}  " for label, value in facts(alert)]
    lines.append(f"> Alert / 告警编号: {alert.alert_id}")
    url = link(public_url, alert)
    if url is not None:
        lines += ["", f"[{url}]({url})"]
    return "\n".join(lines)
