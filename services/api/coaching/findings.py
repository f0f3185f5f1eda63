"""The findings table: which numbers of a scorecard produce which coaching note, in zh and en.

Each rule is data: the KPI it is about, checks that must all hold, and a sentence per language
whose placeholders are numbers of the scorecard (`{connect_rate.value}`,
`{connect_rate.median}`, ...), formatted by the KPI's unit. docs/coaching.md lists the table.
"""

# ruff: noqa: RUF001 - the zh sentences use Chinese (full-width) punctuation on purpose

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from schemas.coaching import Finding, ScoreLine
from schemas.kpis import SPEC, KpiName

Test = Literal[
    "percentile_at_most",
    "percentile_at_least",
    "below_target",
    "at_least_median",
    "change_at_most",
    "at_least",
    "at_most",
    "previous_at_least",
]
MIN_TEAM = 4
"""Percentile checks need at least this many reps with a value: a quarter of three says little."""


@dataclass(frozen=True, slots=True)
class Check:
    """One condition on one KPI line: `test` with its argument `arg`."""

    kpi: KpiName
    test: Test
    arg: float = 0.0


@dataclass(frozen=True, slots=True)
class FindingRule:
    """A finding: when every check holds, say `en` / `zh` about `kpi`."""

    rule: str
    kind: Literal["coach", "praise"]
    kpi: KpiName
    checks: tuple[Check, ...]
    en: str
    zh: str


RULES: tuple[FindingRule, ...] = (
    FindingRule(
        "connect_rate_low",
        "coach",
        "connect_rate",
        (Check("dials", "at_least", 20), Check("connect_rate", "percentile_at_most", 25)),
        "connect rate {connect_rate.value}, bottom quarter of the team "
        "(median {connect_rate.median}): check lists and calling hours",
        "接通率 {connect_rate.value}，处于团队后 25%（中位数 {connect_rate.median}）："
        "检查名单质量和拨打时段",
    ),
    FindingRule(
        "talk_short_lever",
        "coach",
        "avg_talk_seconds",
        (
            Check("connects", "at_least", 10),
            Check("avg_talk_seconds", "below_target"),
            Check("conversion_rate", "at_least_median"),
        ),
        "average talk {avg_talk_seconds.value} against the {avg_talk_seconds.target} target "
        "while conversion is at the team median or above ({conversion_rate.value}, median "
        "{conversion_rate.median}): longer conversations are the lever",
        "平均通话 {avg_talk_seconds.value}，目标 {avg_talk_seconds.target}，而转化率不低于团队"
        "中位数（{conversion_rate.value}，中位数 {conversion_rate.median}）：延长通话是关键",
    ),
    FindingRule(
        "conversion_low",
        "coach",
        "conversion_rate",
        (
            Check("connects", "at_least", 10),
            Check("conversion_rate", "percentile_at_most", 25),
            Check("connect_rate", "at_least_median"),
        ),
        "conversion rate {conversion_rate.value}, bottom quarter of the team (median "
        "{conversion_rate.median}) although connects are at the median or above: work on the "
        "pitch and the close",
        "转化率 {conversion_rate.value}，处于团队后 25%（中位数 {conversion_rate.median}），"
        "但接通率不低于中位数：重点辅导话术与促单",
    ),
    FindingRule(
        "dials_behind_target",
        "coach",
        "dials",
        (Check("dials", "below_target", 0.8),),
        "{dials.value} dials, {dials.progress} of the {dials.target} target",
        "外呼 {dials.value} 次，仅完成目标 {dials.target} 的 {dials.progress}",
    ),
    FindingRule(
        "conversions_falling",
        "coach",
        "conversions",
        (
            Check("conversions", "previous_at_least", 5),
            Check("conversions", "change_at_most", -0.3),
        ),
        "{conversions.value} conversions against {conversions.previous} in the previous period "
        "({conversions.change_ratio})",
        "成交 {conversions.value} 单，上一周期 {conversions.previous} 单"
        "（{conversions.change_ratio}）",
    ),
    FindingRule(
        "csat_low",
        "coach",
        "csat_avg",
        (Check("csat_responses", "at_least", 5), Check("csat_avg", "at_most", 3.5)),
        "CSAT {csat_avg.value} from {csat_responses.value} responses: listen to the low-rated "
        "calls together",
        "满意度 {csat_avg.value}（{csat_responses.value} 条评价）：一起复盘低分通话",
    ),
    FindingRule(
        "conversion_top",
        "praise",
        "conversion_rate",
        (Check("connects", "at_least", 10), Check("conversion_rate", "percentile_at_least", 90)),
        "conversion rate {conversion_rate.value}, top tenth of the team (median "
        "{conversion_rate.median}): worth sharing how",
        "转化率 {conversion_rate.value}，位列团队前 10%（中位数 {conversion_rate.median}）："
        "值得分享经验",
    ),
)
"""The findings table, in the order findings are listed."""


def _holds(check: Check, line: ScoreLine, team_size: int) -> bool:
    value, test = line.value, check.test
    if test in ("percentile_at_most", "percentile_at_least"):
        if line.percentile is None or team_size < MIN_TEAM:
            return False
        if test == "percentile_at_most":
            return line.percentile <= check.arg
        return line.percentile >= check.arg
    if test == "previous_at_least":
        return line.previous is not None and line.previous >= check.arg
    if value is None:
        return False
    if test == "below_target":
        return line.progress is not None and line.progress < (check.arg or 1.0)
    if test == "at_least_median":
        return line.team_median is not None and value >= line.team_median
    if test == "change_at_most":
        return line.change_ratio is not None and line.change_ratio <= check.arg
    if test == "at_least":
        return value >= check.arg
    return value <= check.arg


def _show(kpi: str, value: float | None) -> str:
    if value is None:
        return "-"
    unit = SPEC[kpi].unit
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "seconds":
        seconds = round(value)
        return f"{seconds // 60}:{seconds % 60:02d}"
    if unit == "currency":
        return f"{value:,.2f}"
    if unit == "score":
        return f"{value:.2f}"
    return f"{value:g}"


class _Shown:
    """A KPI line's numbers as text, for the templates' `{kpi.field}` placeholders."""

    def __init__(self, line: ScoreLine) -> None:
        kpi = line.kpi
        self.value = _show(kpi, line.value)
        self.median = _show(kpi, line.team_median)
        self.target = _show(kpi, line.target)
        self.previous = _show(kpi, line.previous)
        self.percentile = "-" if line.percentile is None else f"{line.percentile:.0f}"
        self.progress = "-" if line.progress is None else f"{line.progress * 100:.0f} %"
        self.change_ratio = "-" if line.change_ratio is None else f"{line.change_ratio:+.0%}"


def _numbers(line: ScoreLine) -> dict[str, float | None]:
    fields = ("value", "team_median", "target", "percentile", "previous", "change_ratio")
    names = {"team_median": "median"}
    out = {f"{line.kpi}.{names.get(f, f)}": getattr(line, f) for f in fields}
    out[f"{line.kpi}.progress"] = line.progress
    return out


def findings(
    lines: Mapping[KpiName, ScoreLine], team_size: int, rules: tuple[FindingRule, ...] = RULES
) -> list[Finding]:
    """The findings of one scorecard: every rule of the table whose checks all hold."""
    out: list[Finding] = []
    for rule in rules:
        if not all(_holds(c, lines[c.kpi], team_size) for c in rule.checks):
            continue
        kpis = dict.fromkeys([rule.kpi, *(c.kpi for c in rule.checks)])
        shown = {kpi: _Shown(lines[kpi]) for kpi in kpis}
        numbers: dict[str, float | None] = {}
        for kpi in kpis:
            numbers |= _numbers(lines[kpi])
        out.append(
            Finding(
                rule=rule.rule,
                kind=rule.kind,
                kpi=rule.kpi,
                en=rule.en.format(**shown),
                zh=rule.zh.format(**shown),
                numbers=numbers,
            )
        )
    return out
