"""The coaching queries: counter totals per rep or campaign, lost dials and the weekday x hour
grid, all over the stored call facts (`call_facts`) the reports sum. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, and_, cast, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.kpis import ADDITIVE, Kpis
from services.api.coaching.heatmap import Cells
from services.api.db.models import (
    Call,
    CallFactRow,
    CompetitionResultRow,
    CompetitionRow,
    DigestRun,
    DigestSettingsRow,
)

_FLOAT_COUNTERS = frozenset(n for n in ADDITIVE if Kpis.model_fields[n].annotation is float)
HEAT_COUNTERS = ("dials", "inbound_calls", "connects", "conversions")
NO_CAMPAIGN = "none"
"""The campaign_id that names calls without one (in filters and in the KPIs per campaign)."""


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
    if who.campaign_id == NO_CAMPAIGN:
        condition = and_(condition, Call.campaign_id.is_(None))
    elif who.campaign_id is not None:
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
    # SQLite has no time zones: sum per UTC quarter hour in SQL (every zone's offset is a
    # multiple of 15 minutes, so a quarter lies in one local hour), then place the quarters.
    zone = ZoneInfo(timezone)
    utc_hours = func.strftime("%Y-%m-%d %H", CallFactRow.at)
    quarters = cast(func.strftime("%M", CallFactRow.at), Integer) / 15
    stmt = _joined(select(utc_hours, quarters, CallFactRow.kpi, func.sum(CallFactRow.value)), who)
    stmt = stmt.where(condition).group_by(text("1"), text("2"), CallFactRow.kpi)
    for utc_hour, q, kpi, total in await session.execute(stmt):
        at = datetime.strptime(utc_hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
        local_at = (at + timedelta(minutes=15 * int(q))).astimezone(zone)
        cell = cells.setdefault((local_at.isoweekday(), local_at.hour), {})
        cell[kpi] = cell.get(kpi, 0) + int(total)
    return cells


# --- digests ---------------------------------------------------------------------------------


def _insert(session: AsyncSession, model: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite share the syntax)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(model)
    if name == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"unsupported database dialect {name!r}")


async def digest_settings(
    session: AsyncSession, team_id: str | None = None
) -> dict[str, dict[str, Any]]:
    """Stored digest settings by team (one team's, or every team's)."""
    stmt = select(DigestSettingsRow.team_id, DigestSettingsRow.settings)
    if team_id is not None:
        stmt = stmt.where(DigestSettingsRow.team_id == team_id)
    return {team: dict(settings) for team, settings in await session.execute(stmt)}


async def set_digest_settings(
    session: AsyncSession, team_id: str, settings: dict[str, Any], now: datetime
) -> None:
    """Replace a team's digest settings."""
    stmt = _insert(session, DigestSettingsRow).values(
        team_id=team_id, settings=settings, updated_at=now
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[DigestSettingsRow.team_id],
            set_={"settings": stmt.excluded.settings, "updated_at": stmt.excluded.updated_at},
        )
    )


async def claim_digest(
    session: AsyncSession, team_id: str, kind: str, period_key: str, now: datetime
) -> bool:
    """Claim one team's digest of one period: True for the one caller whose INSERT succeeds."""
    stmt = _insert(session, DigestRun).values(
        team_id=team_id, kind=kind, period_key=period_key, status="sending", claimed_at=now
    )
    stmt = stmt.on_conflict_do_nothing(
        index_elements=[DigestRun.team_id, DigestRun.kind, DigestRun.period_key]
    ).returning(DigestRun.team_id)
    return (await session.execute(stmt)).first() is not None


async def finish_digest(
    session: AsyncSession,
    team_id: str,
    kind: str,
    period_key: str,
    *,
    payload: dict[str, Any],
    sent_at: datetime | None,
    error: str | None,
) -> None:
    """Record how a claimed digest went: sent, or failed with the errors."""
    await session.execute(
        update(DigestRun)
        .where(
            DigestRun.team_id == team_id,
            DigestRun.kind == kind,
            DigestRun.period_key == period_key,
        )
        .values(
            status="sent" if error is None else "failed",
            sent_at=sent_at,
            last_error=error,
            payload=payload,
        )
    )


async def competition_results(
    session: AsyncSession, team_id: str, rep_ids: Sequence[str], start: datetime, end: datetime
) -> list[tuple[int, str, str, list[str]]]:
    """(competition id, name, period, winners) of the frozen results of the team's competitions
    (by team or by any of its reps) whose period ended in (start, end]."""
    stmt = (
        select(
            CompetitionRow.id,
            CompetitionRow.name,
            CompetitionRow.definition,
            CompetitionResultRow.period_key,
            CompetitionResultRow.winners,
        )
        .join(CompetitionResultRow, CompetitionResultRow.competition_id == CompetitionRow.id)
        .where(CompetitionResultRow.period_end > start, CompetitionResultRow.period_end <= end)
        .order_by(CompetitionResultRow.period_end, CompetitionRow.id)
    )
    reps = set(rep_ids)
    out = []
    for competition_id, name, definition, period_key, winners in await session.execute(stmt):
        participants = (definition or {}).get("participants", {})
        if team_id in participants.get("team_ids", []) or reps & set(
            participants.get("rep_ids", [])
        ):
            out.append((int(competition_id), str(name), str(period_key), list(winners)))
    return out
