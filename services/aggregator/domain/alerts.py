"""Alert rules (design §3.6): threshold, pace, idle, missed — evaluated on each rep snapshot.

Each rule keeps its state in the rep's state, so a re-evaluation (a timer tick, a redelivered
fact, a restarted worker) never notifies twice. An alert's id is stable for its life: the rule,
the rep, the window instance it is about and an episode number within that instance.

One evaluator per rule kind (`EVALUATORS`) reads the snapshot into a `Verdict`; `evaluate` alone
moves a rule's state (fire, resolve with hysteresis, cool down), the same way for every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from schemas.alerts import Alert, AlertKind
from schemas.glossary import in_sentence, kpi_label, window_label
from schemas.kpis import RepSnapshot
from schemas.roster import AlertRule, Shift, Target
from schemas.targets import shift_bounds


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


@dataclass(frozen=True, slots=True)
class RuleState:
    """One rule's alert for one rep, kept in the rep's state (`RepState.alerts[rule_id]`).

    `key` is the window instance the alert is about (a local day, a window start) and
    `episode` counts alerts within it. The dict form is what the rep-state changelogs hold:
    its keys never change, so any stored state stays readable.
    """

    key: str
    episode: int
    alert_id: str
    state: Literal["firing", "resolved"]
    fired_at: datetime
    resolved_at: datetime | None = None
    rule: dict[str, Any] | None = None
    """The rule as it fired: a firing alert whose rule is removed is resolved with it."""

    def to_dict(self) -> dict[str, Any]:
        """The stored (JSON) form (`rule` only when known: states from before it lack it)."""
        stored = {
            "key": self.key,
            "episode": self.episode,
            "alert_id": self.alert_id,
            "state": self.state,
            "fired_at": self.fired_at.isoformat(),
            "resolved_at": None if self.resolved_at is None else self.resolved_at.isoformat(),
        }
        return stored if self.rule is None else {**stored, "rule": self.rule}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuleState:
        """Inverse of to_dict."""
        resolved_at = d.get("resolved_at")
        return cls(
            key=d["key"],
            episode=d["episode"],
            alert_id=d["alert_id"],
            state=d["state"],
            fired_at=datetime.fromisoformat(d["fired_at"]),
            resolved_at=None if resolved_at is None else datetime.fromisoformat(resolved_at),
            rule=d.get("rule"),
        )


@dataclass(frozen=True, slots=True)
class Scene:
    """What every rule of one rep reads at one evaluation."""

    snap: RepSnapshot
    targets: tuple[Target, ...]
    now: datetime
    day: str  # the local day of `now`: the window instance of shift-bound rules
    who: str
    shift: tuple[datetime, datetime] | None  # today's shift, None on a day off

    @classmethod
    def of(
        cls, snap: RepSnapshot, shift: Shift, targets: tuple[Target, ...], now: datetime
    ) -> Scene:
        """The scene of a snapshot at `now`."""
        tz = ZoneInfo(snap.timezone)
        return cls(
            snap=snap,
            targets=targets,
            now=now,
            day=now.astimezone(tz).date().isoformat(),
            who=snap.rep_name or snap.rep_id,
            shift=shift_bounds(shift, now, tz),
        )

    def in_shift(self) -> bool:
        """Whether `now` is inside today's shift."""
        return self.shift is not None and self.shift[0] <= self.now < self.shift[1]

    def today(self, kpi: str) -> tuple[float, float] | None:
        """The `today` target of `kpi` and its value now; None without either."""
        target = next((t.value for t in self.targets if t.kpi == kpi and t.window == "today"), None)
        raw = getattr(self.snap.windows["today"], kpi)
        if target is None or raw is None:
            return None
        return target, float(raw)


Evaluator = Callable[[AlertRule, Scene], Verdict | None]
"""How one kind of rule reads a scene; None when the rule does not apply now."""


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _names(kpi: str) -> tuple[str, str]:
    """A KPI's glossary name as it reads inside an English sentence, and in Chinese."""
    return in_sentence(kpi_label(kpi, "en")), kpi_label(kpi, "zh")


_INSTANT_WINDOWS = frozenset({"today", "week", "month", "hour"})
"""Windows with a start of their own; a rolling window's alert belongs to the local day."""


def judge_threshold(rule: AlertRule, scene: Scene) -> Verdict | None:
    """`kpi` over `window` below (or above) `value`, once the window has `min_sample` calls."""
    if rule.value is None:
        return None
    kpis = scene.snap.windows[rule.window]
    raw = getattr(kpis, rule.kpi)
    if raw is None or kpis.dials + kpis.inbound_calls < rule.min_sample:
        return None
    value = float(raw)
    below = rule.op == "below"
    margin = rule.value * rule.hysteresis
    key = kpis.window_start.isoformat() if rule.window in _INSTANT_WINDOWS else scene.day
    word_en, word_zh = ("below", "低于") if below else ("above", "高于")
    kpi_en, kpi_zh = _names(rule.kpi)
    window_en = in_sentence(window_label(rule.window, "en"))
    return Verdict(
        key,
        breach=value < rule.value if below else value > rule.value,
        recovered=value >= rule.value + margin if below else value <= rule.value - margin,
        value=value,
        threshold=rule.value,
        message_en=f"{scene.who}: {kpi_en} ({window_en}) is {_fmt(value)}, "
        f"{word_en} {_fmt(rule.value)}",
        message_zh=f"{scene.who}：{kpi_zh}（{window_label(rule.window, 'zh')}）为 {_fmt(value)}，"
        f"{word_zh} {_fmt(rule.value)}",
    )


def judge_pace(rule: AlertRule, scene: Scene) -> Verdict | None:
    """During the shift, `today`'s count trails the pro-rata share of its target by more than
    `tolerance`; silent until one unit is expected."""
    reading = scene.today(rule.kpi)
    if reading is None or scene.shift is None or not scene.in_shift():
        return None
    target, value = reading
    start, end = scene.shift
    expected = target * ((scene.now - start) / (end - start))
    if expected < 1:
        return None  # too early in the shift to judge
    floor_ = expected * (1 - rule.tolerance)
    kpi_en, kpi_zh = _names(rule.kpi)
    return Verdict(
        scene.day,
        breach=value < floor_,
        recovered=value >= floor_ + expected * rule.hysteresis,
        value=value,
        threshold=round(floor_, 3),
        message_en=f"{scene.who} is behind pace on {kpi_en}: {_fmt(value)} of an expected "
        f"{_fmt(expected)} by now (target {_fmt(target)} today)",
        message_zh=f"{scene.who} 的{kpi_zh}进度落后：当前 {_fmt(value)}，按进度此时应达 "
        f"{_fmt(expected)}（今日目标 {_fmt(target)}）",
    )


def judge_idle(rule: AlertRule, scene: Scene) -> Verdict | None:
    """No call activity for `idle_minutes` during the shift."""
    if scene.shift is None or not scene.in_shift():
        return None
    since = max(scene.shift[0], scene.snap.last_event_at or scene.shift[0])
    quiet = scene.now - since
    breach = scene.snap.status == "idle" and quiet >= timedelta(minutes=rule.idle_minutes)
    minutes = int(quiet.total_seconds() // 60)
    return Verdict(
        scene.day,
        breach=breach,
        recovered=not breach,
        value=float(minutes),
        threshold=float(rule.idle_minutes),
        message_en=f"{scene.who} has had no call activity for {minutes} minutes during the shift",
        message_zh=f"{scene.who} 已连续 {minutes} 分钟无通话活动（班次中）",
    )


def judge_missed(rule: AlertRule, scene: Scene) -> Verdict | None:
    """`today`'s target of `kpi` not met: judged once the shift has ended, for the rest of
    that day."""
    reading = scene.today(rule.kpi)
    if reading is None or scene.shift is None or scene.now < scene.shift[1]:
        return None
    target, value = reading
    kpi_en, kpi_zh = _names(rule.kpi)
    return Verdict(
        scene.day,
        breach=value < target,
        recovered=value >= target,
        value=value,
        threshold=target,
        message_en=f"{scene.who} missed today's {kpi_en} target: {_fmt(value)} of {_fmt(target)}",
        message_zh=f"{scene.who} 今日{kpi_zh}未达标：{_fmt(value)} / {_fmt(target)}",
    )


EVALUATORS: dict[AlertKind, Evaluator] = {
    "threshold": judge_threshold,
    "pace": judge_pace,
    "idle": judge_idle,
    "missed": judge_missed,
}
"""The evaluator of each rule kind: a new kind is one function and one entry here."""


def advance(
    rule: AlertRule, rep_id: str, held: RuleState | None, reading: Verdict | None, now: datetime
) -> RuleState | None:
    """The rule's next state when this reading is a transition to notify, else None.

    A firing alert resolves when its reading recovers past the hysteresis, stops applying or
    moves to another window instance; a breach fires a new alert unless one is firing or the
    last one resolved less than `cooldown_minutes` ago.
    """
    if held is not None and held.state == "firing":
        if reading is None or reading.recovered or reading.key != held.key:
            return replace(held, state="resolved", resolved_at=now)
        return None
    if reading is None or not reading.breach:
        return None
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    if held is not None and held.resolved_at is not None and now < held.resolved_at + cooldown:
        return None
    episode = held.episode + 1 if held is not None and held.key == reading.key else 1
    return RuleState(
        key=reading.key,
        episode=episode,
        alert_id=f"{rule.rule_id}:{rep_id}:{reading.key}:{episode}",
        state="firing",
        fired_at=now,
        rule=rule.model_dump(mode="json"),
    )


def evaluate(
    states: dict[str, dict[str, Any]],
    rules: tuple[AlertRule, ...],
    snap: RepSnapshot,
    shift: Shift,
    targets: tuple[Target, ...],
    now: datetime,
) -> list[Alert]:
    """Advance each rule's state on this snapshot; returns the transitions to notify.

    `states` is the rep's `alerts` (rule_id -> `RuleState.to_dict()`), updated in place."""
    scene = Scene.of(snap, shift, targets, now)
    out: list[Alert] = []
    for rule in rules:
        reading = EVALUATORS[rule.kind](rule, scene)
        stored = states.get(rule.rule_id)
        held = None if stored is None else RuleState.from_dict(stored)
        moved = advance(rule, snap.rep_id, held, reading, now)
        if moved is not None:
            states[rule.rule_id] = moved.to_dict()
            out.append(_alert(rule, snap, moved, reading, now))
    for rule_id in [r for r in states if r not in {rule.rule_id for rule in rules}]:
        # the rule was removed: its firing alert resolves ("no longer applies"), then it goes
        held = RuleState.from_dict(states.pop(rule_id))
        if held.state == "firing" and held.rule is not None:
            gone = replace(held, state="resolved", resolved_at=now)
            out.append(_alert(AlertRule.model_validate(held.rule), snap, gone, None, now))
    return out


def _alert(
    rule: AlertRule,
    snap: RepSnapshot,
    state: RuleState,
    reading: Verdict | None,
    now: datetime,
) -> Alert:
    value = reading.value if reading else None
    threshold = reading.threshold if reading else (rule.value or 0.0)
    en = reading.message_en if reading else f"{rule.rule_id} no longer applies"
    zh = reading.message_zh if reading else f"{rule.rule_id} 已不适用"
    if state.state == "resolved":
        en, zh = f"Resolved: {en}", f"已恢复：{zh}"
    return Alert(
        alert_id=state.alert_id,
        state=state.state,
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
        fired_at=state.fired_at,
        resolved_at=state.resolved_at,
    )
