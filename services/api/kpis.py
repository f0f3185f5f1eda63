"""KPI read service: rep, team and leaderboard answers from the read model, roster-completed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.kpis import WindowName
from schemas.roster import Rep, Shift, Target, Team
from schemas.targets import progress, shift_fraction
from services.api import windows
from services.api.payloads import RowCache, rep_out, with_reps
from services.api.readmodel import ReadModel
from services.api.roster import RosterCache, TeamRoster
from services.api.routes.schemas import (
    LeaderboardOut,
    LeaderboardRow,
    Metric,
    RepKpisOut,
    TeamKpisOut,
)
from services.kit.problems import Problem


def idle_rep_out(
    rep: Rep,
    timezone: str,
    targets: list[Target],
    window: WindowName,
    now: datetime,
    shift: Shift | None = None,
) -> RepKpisOut:
    """The response row of a roster rep with no activity yet: zero counts, null ratios, and
    target progress as the aggregator computes it (its team's shift; without a team, the
    default shift, as the aggregator's)."""
    kpis = windows.zero(window, now, timezone)
    fraction = shift_fraction(shift or Shift(), now, ZoneInfo(timezone))
    return RepKpisOut(
        **kpis.model_dump(),
        rep_id=rep.rep_id,
        rep_name=rep.name,
        team_id=rep.team_id,
        timezone=timezone,
        as_of=None,
        lag_seconds=0.0,
        targets=progress(
            targets, {t.window: windows.zero(t.window, now, timezone) for t in targets}, fraction
        ),
    )


@dataclass
class KpiService:
    """Answers KPI reads: the read model first, the (cached) roster for reps without activity."""

    readmodel: ReadModel
    roster: RosterCache
    default_timezone: str = "UTC"
    team_cache_seconds: float = 0.25
    _team_json: dict[tuple[str, str, bool], tuple[float, bytes]] = field(default_factory=dict)
    _rows: RowCache = field(init=False)

    def __post_init__(self) -> None:
        self._rows = RowCache(self.readmodel)

    async def team_json(self, team_id: str, window: WindowName, *, hourly: bool = False) -> bytes:
        """The team payload (`TeamKpisOut`) as JSON, shared by all requests for up to
        `team_cache_seconds`.

        Every TV on a floor asks for the same payload, and its numbers change at most every
        250 ms. Rebuilding it reserialises only the reps that changed (`payloads.RowCache`).
        """
        key = (team_id, window, hourly)
        now = time.monotonic()
        cached = self._team_json.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        body = await self._team_body(team_id, window, hourly=hourly)
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
        shift = known.team.shift if known.team else None
        return idle_rep_out(known.rep, timezone, known.targets, window, now, shift)

    async def _team_body(self, team_id: str, window: WindowName, *, hourly: bool) -> bytes:
        """Team totals and a row per rep, including roster reps without activity, as JSON."""
        known = await self.roster.team(team_id)
        # From here on nothing awaits: the read model cannot change while the payload is built.
        now = self.readmodel.clock()
        summary = self.readmodel.team_summary(team_id)
        if summary is None and known.team is None and not known.reps:
            raise Problem(404, "Unknown team", f"No KPIs and no roster entry for team {team_id!r}.")
        timezone = known.team.timezone if known.team else None
        timezone = timezone or (summary.timezone if summary else self.default_timezone)
        active = [
            (rep_id, self._rows.row(rep_id, window, hourly=hourly, now=now))
            for rep_id in (summary.rep_ids if summary else ())
        ]
        idle = [
            (row.rep_id, row.model_dump_json().encode())
            for row in self._idle_rows(known, window, now, timezone)
        ]
        counts = dict(summary.status_counts) if summary else {}
        if idle:
            counts["idle"] = counts.get("idle", 0) + len(idle)
        totals = self.readmodel.team_totals(team_id, window, now)
        team = TeamKpisOut(
            **(totals or windows.zero(window, now, timezone)).model_dump(),
            team_id=team_id,
            timezone=timezone,
            as_of=summary.as_of if summary else None,
            lag_seconds=summary.lag_seconds if summary else 0.0,
            rep_count=len(active) + len(idle),
            status_counts=counts,
            reps=[],
        )
        rows = sorted(active + idle, key=lambda row: row[0])
        return with_reps(team, [body for _, body in rows])

    def _idle_rows(
        self, known: TeamRoster, window: WindowName, now: datetime, timezone: str
    ) -> list[RepKpisOut]:
        # Roster reps with no snapshot at all; one with a snapshot is shown where it counts.
        shift = known.team.shift if known.team else None
        return [
            idle_rep_out(rep, timezone, known.targets.get(rep.rep_id, []), window, now, shift)
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
