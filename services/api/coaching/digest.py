"""A team's digest from its scorecards: top performers, biggest movers, reps below the team
with the finding, and the team's funnel against the period before; rendered in zh-CN or en."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from schemas.coaching import (
    Digest,
    DigestCompetition,
    DigestFinding,
    DigestKind,
    DigestRep,
    DigestStage,
    Language,
)
from services.api.coaching.funnel import stages as funnel_stages
from services.api.coaching.scorecard import ZERO, TeamScores, sum_totals

TOP, MOVERS, BELOW = 3, 3, 8
_TITLE = {
    ("daily", "en"): "Daily digest · team {team} · {period}",
    ("weekly", "en"): "Weekly digest · team {team} · {period}",
    ("daily", "zh-CN"): "每日简报 · 团队 {team} · {period}",
    ("weekly", "zh-CN"): "每周简报 · 团队 {team} · {period}",
}
_STAGE = {
    "en": {
        "dials": "Dials",
        "connects": "Connects",
        "conversations": "Conversations",
        "conversions": "Conversions",
    },
    "zh-CN": {
        "dials": "外呼",
        "connects": "接通",
        "conversations": "有效通话",
        "conversions": "成交",
    },
}
_HEAD = {
    "en": (
        "Top performers (conversions)",
        "Biggest movers",
        "Below the team",
        "Team funnel",
        "vs previous",
        "nothing to report",
        "Competition results",
    ),
    "zh-CN": ("成交榜", "变化最大", "低于团队", "团队漏斗", "上期", "暂无", "竞赛结果"),
}


def _rep(scores: TeamScores, rep: str) -> DigestRep:
    now, before = scores.now[rep]["conversions"], scores.before[rep]["conversions"]
    return DigestRep(
        rep_id=rep,
        rep_name=scores.data.names.get(rep),
        conversions=now,
        previous=before,
        change=now - before,
    )


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _name(rep: DigestRep | DigestFinding) -> str:
    return rep.rep_name or rep.rep_id


def render(digest: Digest) -> str:
    """The digest as plain text in its language (chat robots and e-mail)."""
    lang = digest.language
    top, movers, below, funnel, vs, none, contests = _HEAD[lang]
    lines = [digest.title, "", f"## {top}"]
    lines += [f"{i}. {_name(r)}: {r.conversions:g}" for i, r in enumerate(digest.top, 1)] or [none]
    lines += ["", f"## {movers}"]
    lines += [f"- {_name(r)}: {r.change:+g} ({vs} {r.previous:g})" for r in digest.movers] or [none]
    lines += ["", f"## {below}"]
    pick = "en" if lang == "en" else "zh"
    lines += [f"- {_name(b)}: {getattr(b.finding, pick)}" for b in digest.below] or [none]
    lines += ["", f"## {funnel}"]
    for s in digest.funnel:
        rate = "" if s.stage == "dials" else f" ({_pct(s.rate)}; {vs} {_pct(s.previous_rate)})"
        lines.append(f"- {_STAGE[lang][s.stage]}: {s.count} ({vs} {s.previous_count}){rate}")
    if digest.competitions:
        lines += ["", f"## {contests}"]
        lines += [
            f"- {c.name} ({c.period_key}): {', '.join(c.winners) or none}"
            for c in digest.competitions
        ]
    return "\n".join(lines) + "\n"


def build(
    scores: TeamScores,
    kind: DigestKind,
    period_key: str,
    language: Language,
    at: datetime,
    competitions: Sequence[DigestCompetition] = (),
) -> Digest:
    """The digest of a team's scores (its period is the scores' period)."""
    members = scores.data.members
    ranked = sorted(members, key=lambda r: (-(scores.now[r]["conversions"] or 0), r))
    top = [_rep(scores, r) for r in ranked[:TOP] if scores.now[r]["conversions"]]
    moved = [_rep(scores, r) for r in members]
    movers = sorted((m for m in moved if m.change), key=lambda m: (-abs(m.change or 0), m.rep_id))
    below = [
        DigestFinding(rep_id=rep, rep_name=scores.data.names.get(rep), finding=f)
        for rep in members
        for f in scores.scorecard(rep).findings
        if f.kind == "coach"
    ][:BELOW]
    now = sum_totals(scores.data.current.get(r) or ZERO for r in members)
    before = sum_totals(scores.data.previous.get(r) or ZERO for r in members)
    stages_now, stages_before = funnel_stages(now, None), funnel_stages(before, None)
    funnel = [
        DigestStage(
            stage=a.stage,
            count=a.count,
            rate=a.rate,
            previous_count=b.count,
            previous_rate=b.rate,
        )
        for a, b in zip(stages_now, stages_before, strict=True)
    ]
    team_id = scores.team_id or ""
    title = _TITLE[(kind, language)].format(team=team_id, period=period_key)
    draft = Digest(
        digest_id=f"{team_id}:{kind}:{period_key}",
        team_id=team_id,
        kind=kind,
        period_key=period_key,
        language=language,
        at=at,
        period=scores.period,
        top=top,
        movers=movers[:MOVERS],
        below=below,
        funnel=funnel,
        competitions=list(competitions),
        title=title,
        text="",
    )
    return draft.model_copy(update={"text": render(draft)})
