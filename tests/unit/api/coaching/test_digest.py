"""A digest's content from a team's scores, and its text in both languages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from schemas.coaching import DigestCompetition
from schemas.kpis import ADDITIVE
from schemas.roster import Target
from services.api.coaching.digest import build
from services.api.coaching.periods import span
from services.api.coaching.scorecard import TeamPeriod, TeamScores


def totals(**given: float) -> dict[str, Any]:
    return dict.fromkeys(ADDITIVE, 0) | given


def scores() -> TeamScores:
    reps = ["r1", "r2", "r3", "r4"]
    current = {
        "r1": totals(dials=100, connects=40, conversations=20, conversions=9),
        "r2": totals(dials=90, connects=30, conversations=10, conversions=2),
        "r3": totals(dials=10, connects=2, conversations=1, conversions=1),
        "r4": totals(dials=80, connects=35, conversations=15, conversions=5),
    }
    previous = {
        "r1": totals(dials=90, connects=30, conversations=15, conversions=3),
        "r2": totals(dials=90, connects=30, conversations=12, conversions=8),
    }
    data = TeamPeriod(
        members=reps,
        current=current,
        previous=previous,
        targets={r: [Target(kpi="dials", window="week", value=100)] for r in reps},
        names={"r1": "Ada", "r2": "Bo", "r3": None, "r4": "Di"},
        window="week",
    )
    return TeamScores(data, span("week", date(2026, 3, 11), "Asia/Shanghai").out(), "t1")


AT = datetime(2026, 3, 11, 10, tzinfo=UTC)


def test_top_movers_below_and_funnel() -> None:
    won = DigestCompetition(
        competition_id=7, name="Sprint", period_key="2026-03-10", winners=["r1"]
    )
    digest = build(scores(), "weekly", "2026-W11", "en", AT, [won])
    assert digest.digest_id == "t1:weekly:2026-W11"
    assert [(r.rep_id, r.conversions) for r in digest.top] == [("r1", 9), ("r4", 5), ("r2", 2)]
    assert [(r.rep_id, r.change) for r in digest.movers] == [("r1", 6), ("r2", -6), ("r4", 5)]
    assert {b.finding.rule for b in digest.below} >= {"dials_behind_target"}
    assert all(b.finding.kind == "coach" for b in digest.below)
    funnel = {s.stage: (s.count, s.previous_count) for s in digest.funnel}
    assert funnel == {
        "dials": (280, 180),
        "connects": (107, 60),
        "conversations": (46, 27),
        "conversions": (17, 11),
    }
    assert digest.text.startswith("Weekly digest · team t1 · 2026-W11\n")
    assert "1. Ada: 9" in digest.text
    assert "- Bo: -6 (vs previous 8)" in digest.text
    assert "- Sprint (2026-03-10): r1" in digest.text


def test_the_chinese_digest() -> None:
    digest = build(scores(), "daily", "2026-03-11", "zh-CN", AT)
    assert digest.title == "每日简报 · 团队 t1 · 2026-03-11"
    assert "## 成交榜" in digest.text
    assert "## 团队漏斗" in digest.text
    assert "- 外呼: 280 (上期 180)" in digest.text
    assert "竞赛结果" not in digest.text
