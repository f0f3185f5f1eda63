"""Every query of the API. Functions take a session and never commit: the caller owns the unit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from schemas.calls import CallRecord
from schemas.roster import Rep, RosterRecord, Shift, Target, Targets, Team
from services.api.db.models import ApiKey, Base, Call, RepRow, TargetsRow, TeamRow, utcnow

UPSERT_CHUNK = 500
"""Rows per INSERT: ~20 columns each stays far below SQLite's and asyncpg's parameter limits."""

_CALL_COLUMNS = tuple(CallRecord.model_fields)


def _insert(session: AsyncSession, model: type[Base]) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite share the syntax)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"unsupported database dialect {dialect!r}")


def _upsert(
    session: AsyncSession,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    newer: ColumnElement[bool] | None = None,
) -> Insert:
    stmt = _insert(session, model).values(list(rows))
    updated = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(keys), set_=updated, where=newer
    )


# --- calls -----------------------------------------------------------------------------------


def _latest(records: Iterable[CallRecord]) -> list[CallRecord]:
    # One statement may not touch a row twice (PostgreSQL refuses): keep each call's newest.
    best: dict[str, CallRecord] = {}
    for record in records:
        seen = best.get(record.call_id)
        if seen is None or record.version > seen.version:
            best[record.call_id] = record
    return list(best.values())


async def upsert_calls(session: AsyncSession, records: Iterable[CallRecord]) -> int:
    """Store call records; idempotent and order-free: a row only moves to a higher version.

    `INSERT … ON CONFLICT (call_id) DO UPDATE … WHERE calls.version < excluded.version`, in
    chunks. Redelivered or older versions change nothing. Returns the distinct calls submitted.
    """
    latest = _latest(records)
    now = utcnow()
    for start in range(0, len(latest), UPSERT_CHUNK):
        chunk = latest[start : start + UPSERT_CHUNK]
        rows = [{**r.model_dump(include=set(_CALL_COLUMNS)), "updated_at": now} for r in chunk]
        stmt = _insert(session, Call).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Call.call_id],
            set_={c: stmt.excluded[c] for c in (*_CALL_COLUMNS, "updated_at") if c != "call_id"},
            where=Call.version < stmt.excluded.version,
        )
        await session.execute(stmt)
    return len(latest)


async def get_call(session: AsyncSession, call_id: str) -> CallRecord | None:
    """One stored call, or None."""
    row = await session.get(Call, call_id)
    if row is None:
        return None
    return CallRecord.model_validate({c: getattr(row, c) for c in _CALL_COLUMNS})


# --- API keys --------------------------------------------------------------------------------


async def add_key(session: AsyncSession, name: str, role: str, key_hash: str) -> ApiKey:
    """Insert a key (by hash) and return its row with the id assigned."""
    row = ApiKey(name=name, role=role, key_hash=key_hash, created_at=utcnow())
    session.add(row)
    await session.flush()
    return row


async def key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The active (not revoked) key with this hash, or None."""
    stmt = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    return (await session.scalars(stmt)).first()


async def any_key_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The key with this hash, revoked or not."""
    return (await session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash))).first()


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    """Every key, oldest first."""
    return (await session.scalars(select(ApiKey).order_by(ApiKey.id))).all()


async def revoke_key(session: AsyncSession, key_id: int) -> bool:
    """Mark a key revoked; False if there is no such active key."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


# --- roster ----------------------------------------------------------------------------------


def _team(row: TeamRow) -> Team:
    return Team(
        team_id=row.team_id,
        name=row.name,
        timezone=row.timezone,
        shift=Shift.model_validate(row.shift),
    )


def _rep(row: RepRow) -> Rep:
    return Rep(rep_id=row.rep_id, name=row.name, team_id=row.team_id, external_ids=row.external_ids)


async def upsert_team(session: AsyncSession, team: Team) -> None:
    """Create or replace a team."""
    row = {
        "team_id": team.team_id,
        "name": team.name,
        "timezone": team.timezone,
        "shift": team.shift.model_dump(mode="json"),
        "updated_at": utcnow(),
    }
    await session.execute(_upsert(session, TeamRow, [row], ["team_id"]))


async def get_team(session: AsyncSession, team_id: str) -> Team | None:
    """One team, or None."""
    row = await session.get(TeamRow, team_id)
    return _team(row) if row else None


async def list_teams(session: AsyncSession) -> list[Team]:
    """Every team by id."""
    return [_team(r) for r in (await session.scalars(select(TeamRow).order_by(TeamRow.team_id)))]


async def upsert_rep(session: AsyncSession, rep: Rep) -> None:
    """Create or replace a rep."""
    row = {
        "rep_id": rep.rep_id,
        "name": rep.name,
        "team_id": rep.team_id,
        "external_ids": dict(rep.external_ids),
        "updated_at": utcnow(),
    }
    await session.execute(_upsert(session, RepRow, [row], ["rep_id"]))


async def get_rep(session: AsyncSession, rep_id: str) -> Rep | None:
    """One rep, or None."""
    row = await session.get(RepRow, rep_id)
    return _rep(row) if row else None


async def reps_of_team(session: AsyncSession, team_id: str) -> list[Rep]:
    """The reps the roster puts in a team, by id."""
    stmt = select(RepRow).where(RepRow.team_id == team_id).order_by(RepRow.rep_id)
    return [_rep(r) for r in await session.scalars(stmt)]


async def list_reps(session: AsyncSession) -> list[Rep]:
    """Every rep by id."""
    return [_rep(r) for r in await session.scalars(select(RepRow).order_by(RepRow.rep_id))]


async def set_targets(session: AsyncSession, targets: Targets) -> None:
    """Replace the targets of one team or rep."""
    row = {
        "subject": targets.subject,
        "subject_id": targets.subject_id,
        "targets": [t.model_dump(mode="json") for t in targets.targets],
        "updated_at": utcnow(),
    }
    await session.execute(_upsert(session, TargetsRow, [row], ["subject", "subject_id"]))


async def get_targets(
    session: AsyncSession, subject: Literal["team", "rep"], subject_id: str
) -> Targets | None:
    """The targets of one team or rep, or None if never set."""
    row = await session.get(TargetsRow, (subject, subject_id))
    if row is None:
        return None
    items = [Target.model_validate(t) for t in row.targets]
    return Targets(subject=subject, subject_id=subject_id, targets=items)


async def targets_of(
    session: AsyncSession, subject: Literal["team", "rep"], subject_ids: Sequence[str]
) -> dict[str, list[Target]]:
    """The targets of several teams or reps at once (subjects without targets are absent)."""
    if not subject_ids:
        return {}
    stmt = select(TargetsRow).where(
        TargetsRow.subject == subject, TargetsRow.subject_id.in_(list(subject_ids))
    )
    return {
        row.subject_id: [Target.model_validate(t) for t in row.targets]
        for row in await session.scalars(stmt)
    }


async def roster_records(session: AsyncSession) -> list[RosterRecord]:
    """The whole stored roster as records: teams, then reps, then targets."""
    records = [RosterRecord(team=team) for team in await list_teams(session)]
    records += [RosterRecord(rep=rep) for rep in await list_reps(session)]
    for row in await session.scalars(select(TargetsRow).order_by(TargetsRow.subject_id)):
        items = [Target.model_validate(t) for t in row.targets]
        subject: Literal["team", "rep"] = "team" if row.subject == "team" else "rep"
        targets = Targets(subject=subject, subject_id=row.subject_id, targets=items)
        records.append(RosterRecord(targets=targets))
    return records


# --- reports --------------------------------------------------------------------------------


def _within(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _total(condition: ColumnElement[bool], value: Any) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


async def daily_totals(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    team_id: str | None,
    conversation_min_seconds: float,
) -> dict[str, dict[str, Any]]:
    """Additive KPI totals per rep over [start, end), each fact at its own time (design §3.2).

    A dial counts at `started_at` (outbound), a connect at `answered_at` (else the end), talk
    time, conversations and surveys at the end, a conversion and its amount at `outcome_at`.
    """
    connected = Call.connected.is_(True)
    connect_at = func.coalesce(Call.answered_at, Call.ended_at)
    ended = _within(func.coalesce(Call.ended_at, Call.last_event_at), start, end)
    sale = and_(Call.outcome == "sale", _within(Call.outcome_at, start, end))
    survey = and_(Call.csat.is_not(None), ended)
    stmt = (
        select(
            Call.rep_id,
            _count(and_(Call.direction == "outbound", _within(Call.started_at, start, end))),
            _count(and_(Call.direction == "inbound", connected, _within(connect_at, start, end))),
            _count(and_(connected, _within(connect_at, start, end))),
            _total(ended, Call.talk_seconds),
            _count(and_(connected, Call.talk_seconds >= conversation_min_seconds, ended)),
            _count(sale),
            _total(sale, func.coalesce(Call.amount, 0)),
            _total(survey, Call.csat),
            _count(survey),
        )
        .where(
            Call.rep_id.is_not(None),
            or_(
                _within(Call.started_at, start, end),
                _within(Call.answered_at, start, end),
                _within(Call.ended_at, start, end),
                _within(Call.outcome_at, start, end),
                _within(Call.last_event_at, start, end),
            ),
        )
        .group_by(Call.rep_id)
        .order_by(Call.rep_id)
    )
    if team_id is not None:
        stmt = stmt.where(Call.team_id == team_id)
    names = (
        *("dials", "inbound_calls", "connects", "talk_seconds", "conversations"),
        *("conversions", "revenue", "csat_sum", "csat_responses"),
    )
    out: dict[str, dict[str, Any]] = {}
    for row in await session.execute(stmt):
        rep_id, *values = row
        totals = dict(zip(names, values, strict=True))
        for name in ("talk_seconds", "revenue"):
            totals[name] = float(totals[name])
        for name in names:
            if name not in ("talk_seconds", "revenue"):
                totals[name] = int(totals[name])
        out[str(rep_id)] = totals
    return out


async def hourly_dials(
    session: AsyncSession, start: datetime, end: datetime, *, team_id: str | None, timezone: str
) -> dict[int, tuple[int, int]]:
    """Outbound dials and how many connected, by local hour of `started_at`, over [start, end)."""
    outbound = and_(Call.direction == "outbound", _within(Call.started_at, start, end))
    if team_id is not None:
        outbound = and_(outbound, Call.team_id == team_id)
    connected = _count(Call.connected.is_(True))
    if session.get_bind().dialect.name == "postgresql":
        hour = func.extract("hour", func.timezone(timezone, Call.started_at))
        # By position: the hour expression carries a bound zone, which PostgreSQL would not
        # recognise as the same expression twice.
        stmt = select(hour, func.count(), connected).where(outbound).group_by(text("1"))
        return {int(h): (int(d), int(c)) for h, d, c in await session.execute(stmt)}
    # SQLite has no time zones: bucket in Python (embedded mode serves small floors).
    zone = ZoneInfo(timezone)
    hours: dict[int, tuple[int, int]] = {}
    rows = await session.execute(select(Call.started_at, Call.connected).where(outbound))
    for started_at, was_connected in rows:
        hour_of_day = started_at.astimezone(zone).hour if started_at else 0
        dials, connects = hours.get(hour_of_day, (0, 0))
        hours[hour_of_day] = (dials + 1, connects + int(bool(was_connected)))
    return hours
