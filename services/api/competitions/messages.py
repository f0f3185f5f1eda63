# ruff: noqa: RUF001 - the zh sentences use Chinese (full-width) punctuation on purpose
"""The sentences of competition announcements, English and Simplified Chinese."""

from __future__ import annotations

from schemas.competitions import AnnouncementKind, CompetitionIn, PeriodOut


def _period(period: PeriodOut) -> str:
    if period.key != "once":
        return period.key
    return f"{period.start:%Y-%m-%d %H:%M} - {period.end:%Y-%m-%d %H:%M}"


def _who(ids: list[str]) -> str:
    return ", ".join(ids) if ids else "-"


def _points(score: float | None) -> str:
    if score is None:
        return "-"
    return f"{score:.0f}" if float(score).is_integer() else f"{score:.2f}"


def formula(competition: CompetitionIn) -> str:
    """The score as a formula: `10 x conversions + 1 x conversations`."""
    return " + ".join(f"{_points(t.weight)} x {t.kpi}" for t in competition.score)


def texts(
    kind: AnnouncementKind,
    competition: CompetitionIn,
    period: PeriodOut,
    leaders: list[str],
    score: float | None,
    previous: list[str] | None = None,
) -> tuple[str, str]:
    """(English, Chinese) sentences of one announcement."""
    name, when, who, points = competition.name, _period(period), _who(leaders), _points(score)
    if kind == "start":
        return (
            f'Competition "{name}" has started ({when}). Score: {formula(competition)}.',
            f"比赛「{name}」开始了（{when}）。得分：{formula(competition)}。",
        )
    if kind == "lead_change":
        return (
            f'{who} takes the lead in "{name}" with {points} points.',
            f"「{name}」领先者变为 {who}，得分 {points}。",
        )
    if kind == "last_hour":
        return (
            f'One hour left in "{name}" ({when}): {who} leads with {points} points.',
            f"「{name}」（{when}）还剩最后一小时：{who} 以 {points} 分领先。",
        )
    if kind == "winners":
        return (
            f'"{name}" ({when}) is over. Winner: {who} with {points} points.',
            f"「{name}」（{when}）结束，冠军：{who}，得分 {points}。",
        )
    was = _who(previous or [])
    return (
        f'The result of "{name}" ({when}) was corrected by a late call: winner {who} with '
        f"{points} points (was {was}).",
        f"「{name}」（{when}）的结果因迟到的通话而更正：冠军 {who}，得分 {points}（原为 {was}）。",
    )
