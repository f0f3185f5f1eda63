"""Coaching service: reads totals and the roster, and derives scorecards, funnels, campaign KPIs
and the heatmap in the team's time zone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.coaching import (
    CampaignReport,
    CampaignRow,
    Funnel,
    Heatmap,
    Period,
    RepScorecard,
    TeamScorecard,
)
from services.api.coaching import funnel as funnels
from services.api.coaching import heatmap as heatmaps
from services.api.coaching import repository as repo
from services.api.coaching.periods import WINDOW, Span, last_weeks, span
from services.api.coaching.repository import NO_CAMPAIGN, Subject
from services.api.coaching.reuse import Reuse
from services.api.coaching.scorecard import TeamPeriod, TeamScores, sum_totals, values_of
from services.api.roster import RosterCache
from services.kit.problems import Problem


@dataclass
class CoachingService:
    """Answers coaching queries from the call history, in the team's time zone.

    A team's scores and heatmaps are reused for `cache_seconds`, then served stale while one task
    recomputes them (`Reuse`): they sum days and weeks of history, so a page polled by many
    supervisors reads the database about once per team and period in that time and never
    waits for it after the first time; it shows calls stored since at most twice that late.
    """

    sessions: async_sessionmaker[AsyncSession]
    roster: RosterCache
    default_timezone: str = "UTC"
    cache_seconds: float = 30.0
    _scores: Reuse[TeamScores] = field(init=False)
    _heatmaps: Reuse[tuple[Heatmap, bytes]] = field(init=False)

    def __post_init__(self) -> None:
        self._scores = Reuse(self.cache_seconds)
        self._heatmaps = Reuse(self.cache_seconds)

    async def timezone(self, team_id: str | None) -> str:
        """The team's time zone (the service's default without a known team)."""
        if team_id is None:
            return self.default_timezone
        team = (await self.roster.team(team_id)).team
        return team.timezone if team else self.default_timezone

    def _today(self, timezone: str) -> date:
        return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()

    async def team_scores(self, team_id: str, period: Period, day: date | None) -> TeamScores:
        """Every rep's numbers of a team over the period of `day` and the one before."""
        roster = await self.roster.team(team_id)
        timezone = roster.team.timezone if roster.team else self.default_timezone
        s = span(period, day or self._today(timezone), timezone)

        async def compute() -> TeamScores:
            who = Subject(team_id=team_id)
            async with self.sessions() as session:
                current = await repo.totals_by_rep(session, s.start, s.end, who)
                previous = await repo.totals_by_rep(session, s.previous_start, s.previous_end, who)
            members = sorted({r.rep_id for r in roster.reps} | set(current))
            data = TeamPeriod(
                members=members,
                current=current,
                previous=previous,
                targets=roster.targets,
                names={r.rep_id: r.name for r in roster.reps},
                window=WINDOW[period],
            )
            scores = TeamScores(data, s.out(), team_id)
            # The team view's JSON, built off the event loop: 200 reps' scorecards and their
            # serialisation would stall every other request for tens of milliseconds.
            scores.json = await asyncio.to_thread(self._team_json, scores)
            return scores

        return await self._scores.get(("scores", team_id, period, s.start), compute)

    async def rep_scorecard(self, rep_id: str, period: Period, day: date | None) -> RepScorecard:
        """A rep's scorecard against its roster team (the rep alone without one)."""
        found = await self.roster.rep(rep_id)
        team_id = found.rep.team_id if found else None
        if team_id is not None:
            return (await self.team_scores(team_id, period, day)).scorecard(rep_id)
        timezone = self.default_timezone
        s = span(period, day or self._today(timezone), timezone)
        who = Subject(rep_id=rep_id)
        async with self.sessions() as session:
            current = await repo.totals_by_rep(session, s.start, s.end, who)
            previous = await repo.totals_by_rep(session, s.previous_start, s.previous_end, who)
        if found is None and not current and not previous:
            raise Problem(404, "Not found", f"No rep {rep_id!r} in the roster or the history.")
        data = TeamPeriod(
            members=[rep_id],
            current=current,
            previous=previous,
            targets={rep_id: found.targets} if found else {},
            names={rep_id: found.rep.name} if found else {},
            window=WINDOW[period],
        )
        return TeamScores(data, s.out(), None).scorecard(rep_id)

    async def team_scorecard_json(self, team_id: str, period: Period, day: date | None) -> bytes:
        """The team view as JSON, serialised once per computed team scores."""
        scores = await self.team_scores(team_id, period, day)
        return scores.json if scores.json is not None else self._team_json(scores)

    def _team_json(self, scores: TeamScores) -> bytes:
        return self.team_view(scores).model_dump_json().encode()

    def team_view(self, scores: TeamScores) -> TeamScorecard:
        """The team view of a team's scores."""
        return TeamScorecard(
            team_id=scores.team_id or "",
            team_size=len(scores.data.members),
            period=scores.period,
            rankings=scores.rankings(),
            reps=[scores.row(rep) for rep in scores.data.members],
        )

    async def _span(self, team_id: str | None, period: Period, day: date | None) -> Span:
        timezone = await self.timezone(team_id)
        return span(period, day or self._today(timezone), timezone)

    async def funnel(self, who: Subject, period: Period, day: date | None) -> Funnel:
        """The funnel of a rep, team or campaign (any combination), next to its team's."""
        team_id = who.team_id
        if team_id is None and who.rep_id is not None:
            found = await self.roster.rep(who.rep_id)
            team_id = found.rep.team_id if found else None
        s = await self._span(team_id, period, day)
        team = Subject(team_id=team_id) if team_id is not None and team_id else None
        async with self.sessions() as session:
            mine = sum_totals((await repo.totals_by_rep(session, s.start, s.end, who)).values())
            lost = funnels.loss_counts(await repo.dial_outcomes(session, s.start, s.end, who))
            theirs, team_lost = None, None
            if team is not None and team != who:
                rows = await repo.totals_by_rep(session, s.start, s.end, team)
                theirs = sum_totals(rows.values())
                outcomes = await repo.dial_outcomes(session, s.start, s.end, team)
                team_lost = funnels.loss_counts(outcomes)
        return Funnel(
            rep_id=who.rep_id,
            team_id=team_id,
            campaign_id=who.campaign_id,
            period=s.out(),
            stages=funnels.stages(mine, theirs),
            losses=funnels.losses(lost, team_lost),
        )

    async def campaigns(
        self, team_id: str | None, period: Period, day: date | None
    ) -> CampaignReport:
        """KPIs per campaign_id over a period (`none` for calls without one)."""
        s = await self._span(team_id, period, day)
        async with self.sessions() as session:
            rows = await repo.totals_by_campaign(session, s.start, s.end, Subject(team_id=team_id))
        campaigns = [
            CampaignRow(campaign_id=campaign or NO_CAMPAIGN, **values_of(totals))
            for campaign, totals in sorted(rows.items(), key=lambda kv: kv[0] or "")
        ]
        return CampaignReport(team_id=team_id, period=s.out(), campaigns=campaigns)

    async def heatmap(
        self,
        team_id: str | None,
        campaign_id: str | None,
        *,
        weeks: int,
        min_dials: int,
        day: date | None,
    ) -> tuple[Heatmap, bytes]:
        """Rates by the team's local weekday x hour over the last `weeks` weeks up to `day`,
        and its JSON (serialised once per computed heatmap)."""
        timezone = await self.timezone(team_id)
        start, end = last_weeks(day or self._today(timezone), weeks, timezone)

        async def compute() -> tuple[Heatmap, bytes]:
            who = Subject(team_id=team_id, campaign_id=campaign_id)
            async with self.sessions() as session:
                grid = await repo.heat(session, start, end, who, timezone)
            heatmap = Heatmap(
                team_id=team_id,
                campaign_id=campaign_id,
                timezone=timezone,
                weeks=weeks,
                min_dials=min_dials,
                start=start,
                end=end,
                cells=heatmaps.cells(grid, min_dials),
            )
            return heatmap, heatmap.model_dump_json().encode()

        key = ("heatmap", team_id, campaign_id, start, end, min_dials)
        return await self._heatmaps.get(key, compute)
