"""The coaching queries: counter totals per rep or campaign, lost dials and the weekday x hour
grid, all over the stored call facts (`call_facts`) the reports sum. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.kpis import ADDITIVE, Kpis
from services.api.coaching.heatmap import Cells
from services.api.db.models import Call, CallFactRow

_FLOAT_COUNTERS = frozenset(n for n in ADDITIVE if Kpis.model_fields[n].annotation is float)
HEAT_COUNTERS = ("dials", "inbound_calls", "connects", "conversions")


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose facts: any combination of a team, a rep and a campaign (None: any)."""

    team_id: str | None = None
    rep_id: str | None = None
    campaign_id: str | None = None


def natural(kpi: str, total: Any) -> int | float:
    """A counter's total as reports show it: calls as ints, seconds and currency as floats
    (rounded to the facts' 1/10,000, which SQLite's float sums lose)."""
    if kpi in _FLOAT_COUNTERS:
        return float(round(Decimal(str(total)), 4))
    return int(total)


def _where(start: datetime, end: datetime, who: Subject) -> ColumnElement[bool]:
    condition = and_(CallFactRow.at >= start, CallFactRow.at < end)
    if who.team_id is not None:
        condition = and_(condition, CallFactRow.team_id == who.team_id)
    if who.rep_id is not None:
        condition = and_(condition, CallFactRow.rep_id == who.rep_id)
    if who.campaign_id is not None:
        condition = and_(condition, Call.campaign_id == who.campaign_id)
    return condition


def _joined(stmt: Any, who: Subject, *, always: bool = False) -> Any:
    # The campaign is a column of the call, not of its facts.
    if always or who.campaign_id is not None:
        return stmt.join(Call, Call.call_id == CallFactRow.call_id)
    return stmt


async def totals_by_rep(
    session: AsyncSession, start: datetime, end: datetime, who: Subject
) -> dict[str, dict[str, Any]]:
    """Counter totals per rep over [start, end): each fact at the time the rule table lands it."""
    stmt = select(CallFactRow.rep_id, CallFactRow.kpi, func.sum(CallFactRow.value))
    stmt = _joined(stmt, who).where(_where(start, end, who), CallFactRow.kpi.in_(ADDITIVE))
    stmt = stmt.group_by(CallFactRow.rep_id, CallFactRow.kpi)
    out: dict[str, dict[str, Any]] = {}
    for rep_id, kpi, total in await session.execute(stmt):
        out.setdefault(rep_id, {k: natural(k, 0) for k in ADDITIVE})[kpi] = natural(kpi, total)
    return out


async def totals_by_campaign(
    session: AsyncSession, start: datetime, end: datetime, who: Subject
) -> dict[str | None, dict[str, Any]]:
    """Counter totals per campaign_id of the calls over [start, end)."""
    stmt = select(Call.campaign_id, CallFactRow.kpi, func.sum(CallFactRow.value))
    stmt = _joined(stmt, who, always=True)
    stmt = stmt.where(_where(start, end, who), CallFactRow.kpi.in_(ADDITIVE))
    stmt = stmt.group_by(Call.campaign_id, CallFactRow.kpi)
    out: dict[str | None, dict[str, Any]] = {}
    for campaign, kpi, total in await session.execute(stmt):
        out.setdefault(campaign, {k: natural(k, 0) for k in ADDITIVE})[kpi] = natural(kpi, total)
    return out


async def dial_outcomes(
    session: AsyncSession, start: datetime, end: datetime, who: Subject
) -> list[tuple[bool, str | None, str | None, int]]:
    """The dials landing in [start, end), counted by (connected, end status, outcome)."""
    stmt = select(Call.connected, Call.end_status, Call.outcome, func.sum(CallFactRow.value))
    stmt = _joined(stmt, who, always=True)
    stmt = stmt.where(_where(start, end, who), CallFactRow.kpi == "dials")
    stmt = stmt.group_by(Call.connected, Call.end_status, Call.outcome)
    return [
        (bool(connected), status, outcome, int(count))
        for connected, status, outcome, count in await session.execute(stmt)
    ]


async def heat(
    session: AsyncSession, start: datetime, end: datetime, who: Subject, timezone: str
) -> Cells:
    """Dials, connects, inbound calls and conversions by local (ISO weekday, hour)."""
    condition = and_(_where(start, end, who), CallFactRow.kpi.in_(HEAT_COUNTERS))
    cells: Cells = {}
    if session.get_bind().dialect.name == "postgresql":
        local = func.timezone(timezone, CallFactRow.at)
        day, hour = func.extract("isodow", local), func.extract("hour", local)
        stmt = select(day, hour, CallFactRow.kpi, func.sum(CallFactRow.value))
        # By position: the expressions carry a bound zone PostgreSQL would not match twice.
        stmt = _joined(stmt, who).where(condition).group_by(text("1"), text("2"), CallFactRow.kpi)
        for weekday, hour_of_day, kpi, total in await session.execute(stmt):
            cells.setdefault((int(weekday), int(hour_of_day)), {})[kpi] = int(total)
        return cells
    # SQLite has no time zones: bucket in Python (embedded mode serves small floors).
    zone = ZoneInfo(timezone)
    rows = _joined(select(CallFactRow.at, CallFactRow.kpi, CallFactRow.value), who)
    for at, kpi, value in await session.execute(rows.where(condition)):
        local_at = at.astimezone(zone)
        cell = cells.setdefault((local_at.isoweekday(), local_at.hour), {})
        cell[kpi] = cell.get(kpi, 0) + int(value)
    return cells
