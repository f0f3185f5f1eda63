"""Alert rules (design §3.6): threshold, pace, idle, missed — evaluated on each rep snapshot.

Each rule keeps its state in the rep's state, so a re-evaluation (a timer tick, a redelivered
fact, a restarted worker) never notifies twice. An alert's id is stable for its life: the rule,
the rep, the window instance it is about and an episode number within that instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.alerts import Alert
from schemas.kpis import RepSnapshot
from schemas.roster import AlertRule, Shift, Target
from services.aggregator.domain.rep import shift_bounds

KPI_ZH = {
    "dials": "外呼量",
    "inbound_calls": "呼入量",
    "connects": "接通量",
    "connect_rate": "接通率",
    "talk_seconds": "通话时长",
    "avg_talk_seconds": "平均通话时长",
    "conversations": "有效通话",
    "conversions": "成交量",
    "conversion_rate": "转化率",
    "revenue": "成交金额",
    "avg_deal": "客单价",
    "csat_avg": "满意度",
}
WINDOW_ZH = {
    "today": "今日",
    "hour": "本小时",
    "15m": "近15分钟",
    "60m": "近60分钟",
    "week": "本周",
    "month": "本月",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's reading now: breach, recovered (past hysteresis), or neither (no data)."""

    key: str
    breach: bool
    recovered: bool
    value: float | None
    threshold: float
    message_en: str
    message_zh: str


def _target(targets: tuple[Target, ...], kpi: str) -> float | None:
    return next((t.value for t in targets if t.kpi == kpi and t.window == "today"), None)


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def verdict(
    rule: AlertRule,
    snap: RepSnapshot,
    shift: Shift,
    targets: tuple[Target, ...],
    now: datetime,
) -> Verdict | None:
    """How one rule reads on a snapshot at `now`; None when it does not apply now."""
    tz = ZoneInfo(snap.timezone)
    day = now.astimezone(tz).date().isoformat()
    who = snap.rep_name or snap.rep_id
    kpi_zh = KPI_ZH.get(rule.kpi, rule.kpi)
    if rule.kind == "threshold":
        if rule.value is None:
            return None
        kpis = snap.windows[rule.window]
        raw = getattr(kpis, rule.kpi)
        sample = kpis.dials + kpis.inbound_calls
        if raw is None or sample < rule.min_sample:
            return None
        value = float(raw)
        below = rule.op == "below"
        breach = value < rule.value if below else value > rule.value
        margin = rule.value * rule.hysteresis
        recovered = value >= rule.value + margin if below else value <= rule.value - margin
        key = (
            kpis.window_start.isoformat()
            if rule.window in ("today", "week", "month", "hour")
            else day
        )
        word_en, word_zh = ("below", "低于") if below else ("above", "高于")
        return Verdict(
            key,
            breach,
            recovered,
            value,
            rule.value,
            f"{who}: {rule.kpi} ({rule.window}) is {_fmt(value)}, {word_en} {_fmt(rule.value)}",
            f"{who}：{kpi_zh}（{WINDOW_ZH[rule.window]}）为 {_fmt(value)}，"
            f"{word_zh} {_fmt(rule.value)}",
        )
    bounds = shift_bounds(shift, now, tz)
    if bounds is None:
        return None
    start, end = bounds
    if rule.kind == "idle":
        if not start <= now < end:
            return None
        since = max(start, snap.last_event_at or start)
        idle = snap.status == "idle" and now - since >= timedelta(minutes=rule.idle_minutes)
        minutes = int((now - since).total_seconds() // 60)
        return Verdict(
            day,
            idle,
            not idle,
            float(minutes),
            float(rule.idle_minutes),
            f"{who} has had no call activity for {minutes} minutes during the shift",
            f"{who} 已连续 {minutes} 分钟无通话活动（班次中）",
        )
    target = _target(targets, rule.kpi)
    today_raw = getattr(snap.windows["today"], rule.kpi)
    if target is None or today_raw is None:
        return None
    value = float(today_raw)
    if rule.kind == "pace":
        if not start <= now < end:
            return None
        fraction = (now - start) / (end - start)
        expected = target * fraction
        if expected < 1:
            return None  # too early in the shift to judge
        floor_ = expected * (1 - rule.tolerance)
        return Verdict(
            day,
            value < floor_,
            value >= floor_ + expected * rule.hysteresis,
            value,
            round(floor_, 3),
            f"{who} is behind pace on {rule.kpi}: {_fmt(value)} of an expected "
            f"{_fmt(expected)} by now (target {_fmt(target)} today)",
            f"{who} 的{kpi_zh}进度落后：当前 {_fmt(value)}，按进度此时应达 {_fmt(expected)}"
            f"（今日目标 {_fmt(target)}）",
        )
    # missed: judged once the shift has ended, for the rest of that day
    if now < end:
        return None
    return Verdict(
        day,
        value < target,
        value >= target,
        value,
        target,
        f"{who} missed today's {rule.kpi} target: {_fmt(value)} of {_fmt(target)}",
        f"{who} 今日{kpi_zh}未达标：{_fmt(value)} / {_fmt(target)}",
    )


def evaluate(
    states: dict[str, dict[str, Any]],
    rules: tuple[AlertRule, ...],
    snap: RepSnapshot,
    shift: Shift,
    targets: tuple[Target, ...],
    now: datetime,
) -> list[Alert]:
    """Advance each rule's state on this snapshot; returns the transitions to notify."""
    out: list[Alert] = []
    for rule in rules:
        reading = verdict(rule, snap, shift, targets, now)
        state = states.get(rule.rule_id)
        firing = state is not None and state["state"] == "firing"
        if (
            firing
            and state is not None
            and (reading is None or reading.recovered or reading.key != state["key"])
        ):
            state.update(state="resolved", resolved_at=now.isoformat())
            out.append(_alert(rule, snap, state, reading, now))
            continue
        if firing or reading is None or not reading.breach:
            continue
        if state is not None and state.get("resolved_at"):
            cooldown_end = datetime.fromisoformat(state["resolved_at"]) + timedelta(
                minutes=rule.cooldown_minutes
            )
            if now < cooldown_end:
                continue
        episode = state["episode"] + 1 if state and state["key"] == reading.key else 1
        state = {
            "key": reading.key,
            "episode": episode,
            "alert_id": f"{rule.rule_id}:{snap.rep_id}:{reading.key}:{episode}",
            "state": "firing",
            "fired_at": now.isoformat(),
            "resolved_at": None,
        }
        states[rule.rule_id] = state
        out.append(_alert(rule, snap, state, reading, now))
    for rule_id in [r for r in states if r not in {rule.rule_id for rule in rules}]:
        del states[rule_id]  # the rule was removed: forget it (a firing one stays in history)
    return out


def _alert(
    rule: AlertRule,
    snap: RepSnapshot,
    state: dict[str, Any],
    reading: Verdict | None,
    now: datetime,
) -> Alert:
    value = reading.value if reading else None
    threshold = reading.threshold if reading else (rule.value or 0.0)
    en = reading.message_en if reading else f"{rule.rule_id} no longer applies"
    zh = reading.message_zh if reading else f"{rule.rule_id} 已不适用"
    if state["state"] == "resolved":
        en, zh = f"Resolved: {en}", f"已恢复：{zh}"
    return Alert(
        alert_id=state["alert_id"],
        state=state["state"],
        kind=rule.kind,
        rule=rule.rule_id,
        rep_id=snap.rep_id,
        team_id=snap.team_id,
        kpi=rule.kpi if rule.kind != "idle" else "idle_minutes",
        window=rule.window if rule.kind == "threshold" else "today",
        value=value,
        threshold=threshold,
        message_en=en,
        message_zh=zh,
        at=now,
        fired_at=datetime.fromisoformat(state["fired_at"]),
        resolved_at=None
        if state["resolved_at"] is None
        else datetime.fromisoformat(state["resolved_at"]),
    )
