"""KPI read service: rep, team and leaderboard answers from the read model, roster-completed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from schemas.kpis import Kpis, WindowName
from schemas.roster import Rep, Target, Team
from services.api import windows
from services.api.readmodel import ReadModel, RepView, progress
from services.api.roster import RosterCache, TeamRoster
from services.api.routes.schemas import (
    LeaderboardOut,
    LeaderboardRow,
    Metric,
    RepKpisOut,
    TeamKpisOut,
)
from services.kit.problems import Problem


def rep_out(view: RepView, *, hourly: bool = True) -> RepKpisOut:
    """The response row of a rep the read model holds (without its hourly profile if asked)."""
    snap = view.snapshot
    return RepKpisOut(
        **view.kpis.model_dump(),
        rep_id=snap.rep_id,
        rep_name=snap.rep_name,
        team_id=snap.team_id,
        timezone=snap.timezone,
        as_of=snap.as_of,
        lag_seconds=view.lag_seconds,
        age_seconds=view.age_seconds,
        status=snap.status,
        status_since=snap.status_since,
        targets=view.targets,
        hourly=snap.hourly if hourly else [],
    )


def idle_rep_out(
    rep: Rep, timezone: str, targets: list[Target], window: WindowName, now: datetime
) -> RepKpisOut:
    """The response row of a roster rep with no activity yet: zero counts, null ratios."""
    kpis = windows.zero(window, now, timezone)
    return RepKpisOut(
        **kpis.model_dump(),
        rep_id=rep.rep_id,
        rep_name=rep.name,
        team_id=rep.team_id,
        timezone=timezone,
        as_of=None,
        lag_seconds=0.0,
        targets=[
            progress(t.kpi, t.window, t.value, windows.zero(t.window, now, timezone))
            for t in targets
        ],
    )


@dataclass
class KpiService:
    """Answers KPI reads: the read model first, the (cached) roster for reps without activity."""

    readmodel: ReadModel
    roster: RosterCache
    default_timezone: str = "UTC"
    team_cache_seconds: float = 0.25
    _team_json: dict[tuple[str, str, bool], tuple[float, bytes]] = field(default_factory=dict)

    async def team_json(self, team_id: str, window: WindowName, *, hourly: bool = False) -> bytes:
        """The team payload as JSON, shared by all requests for up to `team_cache_seconds`.

        Every TV on a floor asks for the same payload; building and serialising 200 rep rows
        is most of a request's cost (py-spy), while the numbers change at most every 250 ms.
        """
        key = (team_id, window, hourly)
        now = time.monotonic()
        cached = self._team_json.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        body = (await self.team(team_id, window, hourly=hourly)).model_dump_json().encode()
        if len(self._team_json) > 10_000:
            self._team_json.clear()  # bounded: team ids come from clients
        self._team_json[key] = (now + self.team_cache_seconds, body)
        return body

    async def rep(self, rep_id: str, window: WindowName) -> RepKpisOut:
        """A rep's KPIs; zero for a roster rep without activity; 404 for an unknown rep."""
        now = self.readmodel.clock()
        view = self.readmodel.rep(rep_id, window, now)
        if view is not None:
            return rep_out(view)
        known = await self.roster.rep(rep_id)
        if known is None:
            raise Problem(404, "Unknown rep", f"No KPIs and no roster entry for rep {rep_id!r}.")
        timezone = self._timezone(known.team)
        return idle_rep_out(known.rep, timezone, known.targets, window, now)

    async def team(self, team_id: str, window: WindowName, *, hourly: bool = True) -> TeamKpisOut:
        """Team totals and a row per rep, including roster reps without activity."""
        now = self.readmodel.clock()
        view = self.readmodel.team(team_id, window, now)
        known = await self.roster.team(team_id)
        if view is None and known.team is None and not known.reps:
            raise Problem(404, "Unknown team", f"No KPIs and no roster entry for team {team_id!r}.")
        timezone = known.team.timezone if known.team else None
        timezone = timezone or (view.timezone if view else self.default_timezone)
        active = [rep_out(r, hourly=hourly) for r in view.reps] if view else []
        idle = self._idle_rows(known, window, now, timezone)
        counts = dict(view.status_counts) if view else {}
        if idle:
            counts["idle"] = counts.get("idle", 0) + len(idle)
        totals: Kpis = view.totals if view else windows.zero(window, now, timezone)
        return TeamKpisOut(
            **totals.model_dump(),
            team_id=team_id,
            timezone=timezone,
            as_of=view.as_of if view else None,
            lag_seconds=view.lag_seconds if view else 0.0,
            rep_count=len(active) + len(idle),
            status_counts=counts,
            reps=sorted(active + idle, key=lambda row: row.rep_id),
        )

    def _idle_rows(
        self, known: TeamRoster, window: WindowName, now: datetime, timezone: str
    ) -> list[RepKpisOut]:
        # Roster reps with no snapshot at all; one with a snapshot is shown where it counts.
        return [
            idle_rep_out(rep, timezone, known.targets.get(rep.rep_id, []), window, now)
            for rep in known.reps
            if self.readmodel.snapshot(rep.rep_id) is None
        ]

    def leaderboard(
        self,
        metric: Metric,
        window: WindowName,
        team_id: str | None,
        floors: dict[str, float],
        limit: int,
    ) -> LeaderboardOut:
        """Reps ranked by one KPI, after the quality floors."""
        now = self.readmodel.clock()
        ranked = self.readmodel.leaderboard(
            metric, window, team_id=team_id, floors=floors, limit=limit, now=now
        )
        return LeaderboardOut(
            metric=metric,
            window=window,
            team_id=team_id,
            floors=floors,
            generated_at=now,
            rows=[
                LeaderboardRow(
                    rank=row.rank,
                    rep_id=row.rep.snapshot.rep_id,
                    rep_name=row.rep.snapshot.rep_name,
                    team_id=row.rep.snapshot.team_id,
                    value=row.value,
                    kpis=row.rep.kpis,
                )
                for row in ranked
            ],
        )

    def _timezone(self, team: Team | None) -> str:
        return team.timezone if team else self.default_timezone
