"""Report service: daily KPIs per rep and the hourly connect profile, from the call history
(the facts each stored call credits, summed by the time each lands)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.kpis import ADDITIVE, HourlyPoint, kpi_values
from services.api.db import repository
from services.api.roster import RosterCache
from services.api.routes.schemas import DailyReportOut, DailyRow, HourlyReportOut, ReportKpis


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


@dataclass
class ReportService:
    """Answers report queries in the team's time zone (the service's default without a team)."""

    sessions: async_sessionmaker[AsyncSession]
    roster: RosterCache
    default_timezone: str = "UTC"

    async def daily(self, day: date | None, team_id: str | None) -> DailyReportOut:
        """Per-rep KPIs of one local day (today when not given) and their totals."""
        timezone = await self._timezone(team_id)
        zone = ZoneInfo(timezone)
        day = day or datetime.now(UTC).astimezone(zone).date()
        start, end = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
        async with self.sessions() as session:
            per_rep = await repository.daily_totals(session, start, end, team_id=team_id)
        sums = {name: sum(t[name] for t in per_rep.values()) for name in ADDITIVE}
        return DailyReportOut(
            date=day,
            team_id=team_id,
            timezone=timezone,
            start=start,
            end=end,
            totals=ReportKpis(**kpi_values(**sums)),
            reps=[DailyRow(rep_id=rep, **kpi_values(**t)) for rep, t in per_rep.items()],
        )

    async def hourly(self, team_id: str | None, days: int) -> HourlyReportOut:
        """Outbound dials and connects by the local hour each lands (a dial at the call's
        first moment, a connect at the answer) over the last `days` local days."""
        timezone = await self._timezone(team_id)
        zone = ZoneInfo(timezone)
        end = datetime.now(UTC).astimezone(zone)
        start = _midnight(end.date() - timedelta(days=days - 1), zone)
        async with self.sessions() as session:
            hours = await repository.hourly_profile(
                session, start, end, team_id=team_id, timezone=timezone
            )
        points = []
        for hour in range(24):
            dials, connects = hours.get(hour, (0, 0))
            rate = None if dials == 0 else round(connects / dials, 6)
            points.append(HourlyPoint(hour=hour, dials=dials, connects=connects, connect_rate=rate))
        return HourlyReportOut(
            team_id=team_id, timezone=timezone, days=days, start=start, end=end, hours=points
        )

    async def _timezone(self, team_id: str | None) -> str:
        if team_id is None:
            return self.default_timezone
        team = (await self.roster.team(team_id)).team
        return team.timezone if team else self.default_timezone
