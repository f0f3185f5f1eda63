"""Every query of competitions: definitions, fact totals per participant over a period, the
calls behind a rep's number, frozen results and announcements. Functions never commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.kpis import ADDITIVE, Kpis
from services.api.db.models import (
    Base,
    Call,
    CallFactRow,
    CompetitionAnnouncementRow,
    CompetitionResultRow,
    CompetitionRow,
)

By = Literal["rep", "team"]
_FLOATS = frozenset(n for n in ADDITIVE if Kpis.model_fields[n].annotation is float)


def _insert(session: AsyncSession, model: type[Base]) -> Any:
    """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite share the syntax)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def natural(kpi: str, total: Any) -> int | float:
    """A counter total as the reports show it: exact to 1/10,000 (SQLite sums floats)."""
    if kpi in _FLOATS:
        return float(round(Decimal(str(total)), 4))
    return int(total)


# --- definitions -----------------------------------------------------------------------------


async def add(
    session: AsyncSession, name: str, timezone: str, definition: dict[str, Any], now: datetime
) -> CompetitionRow:
    """Store a new competition."""
    row = CompetitionRow(
        name=name, timezone=timezone, definition=definition, created_at=now, updated_at=now
    )
    session.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, competition_id: int) -> CompetitionRow | None:
    """One competition, read fresh."""
    return await session.get(CompetitionRow, competition_id, populate_existing=True)


async def all_rows(session: AsyncSession) -> Sequence[CompetitionRow]:
    """Every competition, oldest first."""
    stmt = select(CompetitionRow).order_by(CompetitionRow.id)
    return (await session.scalars(stmt.execution_options(populate_existing=True))).all()


async def replace(
    session: AsyncSession,
    competition_id: int,
    name: str,
    timezone: str,
    definition: dict[str, Any],
    now: datetime,
) -> bool:
    """Replace a competition's definition; False if it is unknown."""
    result = await session.execute(
        update(CompetitionRow)
        .where(CompetitionRow.id == competition_id)
        .values(name=name, timezone=timezone, definition=definition, updated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def remove(session: AsyncSession, competition_id: int) -> bool:
    """Delete a competition with its results and announcements; False if it is unknown."""
    for model in (CompetitionResultRow, CompetitionAnnouncementRow):
        await session.execute(delete(model).where(model.competition_id == competition_id))
    result = await session.execute(
        delete(CompetitionRow).where(CompetitionRow.id == competition_id)
    )
    return bool(getattr(result, "rowcount", 0))


# --- totals ----------------------------------------------------------------------------------


def _members(by: By, rep_ids: Sequence[str], team_ids: Sequence[str]) -> ColumnElement[bool]:
    if by == "team":
        return CallFactRow.team_id.in_(list(team_ids))
    return or_(CallFactRow.rep_id.in_(list(rep_ids)), CallFactRow.team_id.in_(list(team_ids)))


async def totals(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    by: By,
    rep_ids: Sequence[str],
    team_ids: Sequence[str],
    only: Sequence[str] | None = None,
) -> dict[str, dict[str, int | float]]:
    """Counter totals per participant (rep or team) of the facts landing in [start, end).

    The same facts, summed the same way, as the daily report (`repository.daily_totals`): a
    call's credit counts at the time the KPI rule table lands it, for the call's rep and team.
    `only` restricts the answer to some participants (a refresh after new call records).
    """
    key = CallFactRow.rep_id if by == "rep" else CallFactRow.team_id
    condition = and_(CallFactRow.at >= start, CallFactRow.at < end, _members(by, rep_ids, team_ids))
    if only is not None:
        condition = and_(condition, key.in_(list(only)))
    stmt = (
        select(key, CallFactRow.kpi, func.sum(CallFactRow.value))
        .where(condition, CallFactRow.kpi.in_(ADDITIVE))
        .group_by(key, CallFactRow.kpi)
    )
    rows = (await session.execute(stmt)).all()
    # Tens of thousands of rows for a large floor: fold them off the event loop.
    return await asyncio.to_thread(_fold, rows)


def _fold(rows: Sequence[Any]) -> dict[str, dict[str, int | float]]:
    out: dict[str, dict[str, int | float]] = {}
    for participant, kpi, total in rows:
        if participant is not None:
            out.setdefault(participant, {})[kpi] = natural(kpi, total)
    return out


async def touched(
    session: AsyncSession,
    since: datetime,
    *,
    by: By,
    rep_ids: Sequence[str],
    team_ids: Sequence[str],
) -> list[str]:
    """The participants (reps or teams) of calls stored at or after `since`."""
    key = Call.rep_id if by == "rep" else Call.team_id
    members: ColumnElement[bool]
    if by == "team":
        members = Call.team_id.in_(list(team_ids))
    else:
        members = or_(Call.rep_id.in_(list(rep_ids)), Call.team_id.in_(list(team_ids)))
    stmt = select(key).where(Call.updated_at >= since, members, key.is_not(None)).distinct()
    return sorted(str(p) for p in (await session.scalars(stmt)).all())


async def rep_calls(
    session: AsyncSession,
    rep_id: str,
    start: datetime,
    end: datetime,
    kpis: Sequence[str],
    limit: int,
) -> list[tuple[Call, list[tuple[str, datetime, Decimal]]]]:
    """The calls whose facts of `kpis` credit `rep_id` in [start, end), each with those facts,
    by the time of their first such fact."""
    facts = (
        select(CallFactRow.call_id, CallFactRow.kpi, CallFactRow.at, CallFactRow.value)
        .where(
            CallFactRow.rep_id == rep_id,
            CallFactRow.at >= start,
            CallFactRow.at < end,
            CallFactRow.kpi.in_(list(kpis)),
        )
        .order_by(CallFactRow.at, CallFactRow.call_id, CallFactRow.kpi)
    )
    by_call: dict[str, list[tuple[str, datetime, Decimal]]] = {}
    for call_id, kpi, at, value in await session.execute(facts):
        if call_id not in by_call and len(by_call) >= limit:
            break
        by_call.setdefault(call_id, []).append((kpi, at, value))
    if not by_call:
        return []
    calls = await session.scalars(select(Call).where(Call.call_id.in_(list(by_call))))
    rows = {call.call_id: call for call in calls}
    return [(rows[c], f) for c, f in by_call.items() if c in rows]


# --- results ---------------------------------------------------------------------------------


async def freeze(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store a period's result unless one is stored: True if this call froze it."""
    stmt = _insert(session, CompetitionResultRow).values(**values)
    result = await session.execute(
        stmt.on_conflict_do_nothing(
            index_elements=[CompetitionResultRow.competition_id, CompetitionResultRow.period_key]
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def result(
    session: AsyncSession, competition_id: int, period_key: str
) -> CompetitionResultRow | None:
    """One period's stored result, read fresh."""
    return await session.get(
        CompetitionResultRow, (competition_id, period_key), populate_existing=True
    )


async def correct(session: AsyncSession, row: CompetitionResultRow, values: dict[str, Any]) -> bool:
    """Move a result to its next revision, unless another writer did first."""
    update_stmt = (
        update(CompetitionResultRow)
        .where(
            CompetitionResultRow.competition_id == row.competition_id,
            CompetitionResultRow.period_key == row.period_key,
            CompetitionResultRow.revision == row.revision,
        )
        .values(**values)
    )
    return bool(getattr(await session.execute(update_stmt), "rowcount", 0))


async def results(
    session: AsyncSession,
    competition_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> Sequence[CompetitionResultRow]:
    """A competition's results, newest period first, ending in [since, until)."""
    stmt = (
        select(CompetitionResultRow)
        .where(CompetitionResultRow.competition_id == competition_id)
        .order_by(CompetitionResultRow.period_end.desc())
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if since is not None:
        stmt = stmt.where(CompetitionResultRow.period_end >= since)
    if until is not None:
        stmt = stmt.where(CompetitionResultRow.period_end < until)
    return (await session.scalars(stmt)).all()


# --- announcements ---------------------------------------------------------------------------


async def claim_announcement(
    session: AsyncSession,
    announcement_id: str,
    competition_id: int,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
) -> bool:
    """Record an announcement unless it exists: True if this call is the one to send it."""
    stmt = _insert(session, CompetitionAnnouncementRow).values(
        announcement_id=announcement_id,
        competition_id=competition_id,
        kind=kind,
        status="pending",
        attempts=0,
        payload=payload,
        created_at=now,
    )
    result = await session.execute(
        stmt.on_conflict_do_nothing(index_elements=[CompetitionAnnouncementRow.announcement_id])
    )
    return bool(getattr(result, "rowcount", 0))


async def finish_announcement(
    session: AsyncSession,
    announcement_id: str,
    *,
    attempts: int,
    sent_at: datetime | None,
    error: str | None,
) -> None:
    """Record how sending an announcement went."""
    await session.execute(
        update(CompetitionAnnouncementRow)
        .where(CompetitionAnnouncementRow.announcement_id == announcement_id)
        .values(
            status="sent" if error is None else "failed",
            attempts=attempts,
            sent_at=sent_at,
            last_error=error,
        )
    )


async def announcements(
    session: AsyncSession, competition_id: int, limit: int = 100
) -> Sequence[CompetitionAnnouncementRow]:
    """A competition's announcements, oldest first."""
    stmt = (
        select(CompetitionAnnouncementRow)
        .where(CompetitionAnnouncementRow.competition_id == competition_id)
        .order_by(CompetitionAnnouncementRow.created_at, CompetitionAnnouncementRow.announcement_id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).all()
