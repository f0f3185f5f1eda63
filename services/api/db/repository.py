"""Every query of the API. Functions take a session and never commit: the caller owns the unit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import Insert

from schemas.alerts import Alert
from schemas.calls import CallFact, CallRecord
from schemas.kpis import ADDITIVE, Kpis
from schemas.roster import AlertRule, AlertRules, Rep, RosterRecord, Shift, Target, Targets, Team
from services.api.db.models import (
    AlertChannelsRow,
    AlertDelivery,
    AlertRow,
    AlertRulesRow,
    ApiKey,
    Base,
    Call,
    CallFactRow,
    RepRow,
    TargetsRow,
    TeamRow,
    utcnow,
)

UPSERT_CHUNK = 500
"""Rows per INSERT: ~20 columns each stays far below SQLite's and asyncpg's parameter limits."""

_CALL_COLUMNS = tuple(name for name in CallRecord.model_fields if name in Call.__table__.c)
_FLOAT_COUNTERS = frozenset(n for n in ADDITIVE if Kpis.model_fields[n].annotation is float)
"""Counters in seconds or currency (floats in reports); the others count calls."""
_COUNTER_ORDER = {name: i for i, name in enumerate(ADDITIVE)}
_CALL_FACTS = cast(Table, CallFactRow.__table__)
DEFAULT_CONVERSATION_MIN_SECONDS = 300.0


def _insert(session: AsyncSession, model: type[Base]) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite share the syntax)."""
    return _dialect_insert(session.get_bind().dialect.name, model)


def _dialect_insert(dialect: str, target: type[Base] | Table) -> Any:
    """`_insert` by the dialect's name."""
    if dialect == "postgresql":
        return postgresql.insert(target)
    if dialect == "sqlite":
        return sqlite.insert(target)
    raise NotImplementedError(f"unsupported database dialect {dialect!r}")


_CALL_FIELDS = set(_CALL_COLUMNS)
_CALLS = cast(Table, Call.__table__)


@cache
def _call_upsert(dialect: str) -> Insert:
    """`INSERT INTO calls … ON CONFLICT (call_id) DO UPDATE … WHERE calls.version <
    excluded.version RETURNING call_id`, for executemany (one statement per dialect)."""
    stmt = _dialect_insert(dialect, _CALLS)
    columns = (*_CALL_COLUMNS, "updated_at")
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[_CALLS.c.call_id],
        set_={c: stmt.excluded[c] for c in columns if c != "call_id"},
        where=_CALLS.c.version < stmt.excluded.version,
    ).returning(_CALLS.c.call_id)


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


def legacy_facts(
    record: CallRecord, conversation_min_seconds: float = DEFAULT_CONVERSATION_MIN_SECONDS
) -> list[CallFact]:
    """The facts of a record written before records carried them, derived from its columns.

    The KPI rule table over the record's fields, as migration 0003 backfills stored calls: a
    dial at the first known moment (outbound), a connect at the answer (else that moment), talk
    and conversations at the end, a sale at its outcome. The survey's own time is not in the
    record, so it lands at the last event. A test holds this, the migration's SQL and the rule
    table to each other.
    """
    if record.rep_id is None:
        return []
    first = record.started_at or record.answered_at or record.ended_at
    connect = record.answered_at or first
    inbound = record.direction == "inbound"
    talked = record.connected and not record.stale_closed
    talk_ms = round(record.talk_seconds * 1000)
    sale = record.outcome == "sale"
    amount = record.amount or Decimal(0)
    survey = record.csat is not None
    candidates: tuple[tuple[str, datetime | None, Decimal | int, bool], ...] = (
        ("dials", first, 1, not inbound),
        ("inbound_calls", connect, 1, record.connected and inbound),
        ("connects", connect, 1, record.connected),
        ("talk_seconds", record.ended_at, Decimal(talk_ms) / 1000, talked and talk_ms > 0),
        (
            "conversations",
            record.ended_at,
            1,
            talked and record.talk_seconds >= conversation_min_seconds,
        ),
        ("conversions", record.outcome_at, 1, sale),
        ("revenue", record.outcome_at, amount, sale and amount > 0),
        ("csat_sum", record.last_event_at, record.csat or 0, survey),
        ("csat_responses", record.last_event_at, 1, survey),
    )
    return [
        CallFact(kpi=kpi, at=at, value=Decimal(value))
        for kpi, at, value, counts in candidates
        if counts and at is not None
    ]


def _fact_rows(record: CallRecord, conversation_min_seconds: float) -> list[dict[str, Any]]:
    """The call_facts rows of one record (none without a rep: such a call credits nothing)."""
    if record.rep_id is None:
        return []
    if "facts" in record.model_fields_set:
        facts = record.facts
    else:  # a record from before 0.2: the field was absent, not empty
        facts = legacy_facts(record, conversation_min_seconds)
    values: dict[tuple[str, datetime], Decimal] = {}
    for fact in facts:
        key = (fact.kpi, fact.at)
        values[key] = values.get(key, Decimal(0)) + fact.value
    return [
        {
            "call_id": record.call_id,
            "kpi": kpi,
            "at": at,
            "value": value,
            "rep_id": record.rep_id,
            "team_id": record.team_id,
        }
        for (kpi, at), value in values.items()
    ]


async def upsert_calls(
    session: AsyncSession,
    records: Iterable[CallRecord],
    *,
    conversation_min_seconds: float = DEFAULT_CONVERSATION_MIN_SECONDS,
) -> int:
    """Store call records and their facts; idempotent and order-free.

    A row only moves to a higher version: `INSERT … ON CONFLICT (call_id) DO UPDATE … WHERE
    calls.version < excluded.version RETURNING call_id`, in chunks. The calls it returns (new,
    or moved to a newer version) get their facts replaced by the record's; a redelivered or
    older version changes neither the row nor the facts, so facts always belong to the stored
    version. Records from before 0.2 carry no facts: theirs are derived (`legacy_facts`, with
    `conversation_min_seconds`). Returns the distinct calls submitted.
    """
    latest = _latest(records)
    now = utcnow()
    stmt = _call_upsert(session.get_bind().dialect.name)
    for start in range(0, len(latest), UPSERT_CHUNK):
        chunk = latest[start : start + UPSERT_CHUNK]
        rows = [{**r.model_dump(include=_CALL_FIELDS), "updated_at": now} for r in chunk]
        # executemany of one cached statement (SQLAlchemy sends multi-row INSERTs with
        # RETURNING): a statement with the rows as VALUES was compiled anew for every chunk,
        # which took a quarter of the API's CPU at 500 events/s (make bench, e2e)
        moved = set((await session.execute(stmt, rows)).scalars().all())
        if not moved:
            continue
        await session.execute(delete(CallFactRow).where(CallFactRow.call_id.in_(moved)))
        facts = [
            row
            for record in chunk
            if record.call_id in moved
            for row in _fact_rows(record, conversation_min_seconds)
        ]
        if facts:
            # Core executemany (a third faster than the ORM's bulk insert): SQLAlchemy batches
            # it into multi-row INSERTs within the drivers' parameter limits.
            await session.execute(insert(_CALL_FACTS), facts)
    return len(latest)


async def get_call(session: AsyncSession, call_id: str) -> CallRecord | None:
    """One stored call with its stored facts (in rule-table order), or None."""
    row = await session.get(Call, call_id)
    if row is None:
        return None
    stmt = select(CallFactRow).where(CallFactRow.call_id == call_id)
    facts = sorted(
        (await session.scalars(stmt)).all(),
        key=lambda f: (_COUNTER_ORDER.get(f.kpi, len(ADDITIVE)), f.at),
    )
    return CallRecord.model_validate(
        {
            **{c: getattr(row, c) for c in _CALL_COLUMNS},
            "facts": [CallFact(kpi=f.kpi, at=f.at, value=f.value) for f in facts],
        }
    )


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


async def set_alert_rules(session: AsyncSession, rules: AlertRules) -> None:
    """Replace the alert rules of one team or rep."""
    row = {
        "subject": rules.subject,
        "subject_id": rules.subject_id,
        "rules": [r.model_dump(mode="json") for r in rules.rules],
        "updated_at": utcnow(),
    }
    await session.execute(_upsert(session, AlertRulesRow, [row], ["subject", "subject_id"]))


async def get_alert_rules(
    session: AsyncSession, subject: Literal["team", "rep"], subject_id: str
) -> AlertRules | None:
    """The alert rules of one team or rep, or None if never set."""
    row = await session.get(AlertRulesRow, (subject, subject_id))
    if row is None:
        return None
    items = [AlertRule.model_validate(r) for r in row.rules]
    return AlertRules(subject=subject, subject_id=subject_id, rules=items)


async def roster_records(session: AsyncSession) -> list[RosterRecord]:
    """The whole stored roster as records: teams, then reps, then targets, then alert rules."""
    records = [RosterRecord(team=team) for team in await list_teams(session)]
    records += [RosterRecord(rep=rep) for rep in await list_reps(session)]
    for row in await session.scalars(select(TargetsRow).order_by(TargetsRow.subject_id)):
        items = [Target.model_validate(t) for t in row.targets]
        subject: Literal["team", "rep"] = "team" if row.subject == "team" else "rep"
        targets = Targets(subject=subject, subject_id=row.subject_id, targets=items)
        records.append(RosterRecord(targets=targets))
    stmt = select(AlertRulesRow).order_by(AlertRulesRow.subject, AlertRulesRow.subject_id)
    for rules_row in await session.scalars(stmt):
        kind: Literal["team", "rep"] = "team" if rules_row.subject == "team" else "rep"
        rules = [AlertRule.model_validate(r) for r in rules_row.rules]
        alert_rules = AlertRules(subject=kind, subject_id=rules_row.subject_id, rules=rules)
        records.append(RosterRecord(alert_rules=alert_rules))
    return records


# --- alerts ----------------------------------------------------------------------------------

_ALERTS_LOCK_ID = 0x63616C6C616C7274
"""Advisory lock id of alert writers (arbitrary constant)."""


async def lock_alerts(session: AsyncSession) -> None:
    """Take the alert writers' lock until the transaction ends.

    One writer at a time makes `seq` (max + 1) follow commit order: a reader that has seen a
    seq has seen every smaller one, which is what lets an SSE client resume without gaps.
    PostgreSQL needs the advisory lock; SQLite has a single writer anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ALERTS_LOCK_ID})


def alert_of(row: AlertRow) -> Alert:
    """The Alert of a stored row (its latest transition)."""
    return Alert.model_validate(
        {
            "alert_id": row.alert_id,
            "state": row.state,
            "kind": row.kind,
            "rule": row.rule,
            "rep_id": row.rep_id,
            "team_id": row.team_id,
            "kpi": row.kpi,
            "window": row.window,
            "value": row.value,
            "threshold": row.threshold,
            "message_en": row.messages.get("en", ""),
            "message_zh": row.messages.get("zh", ""),
            "at": row.at,
            "fired_at": row.fired_at,
            "resolved_at": row.resolved_at,
        }
    )


async def upsert_alert(session: AsyncSession, alert: Alert, now: datetime) -> int | None:
    """Apply one transition; returns its new `seq`, or None when it changes nothing.

    A firing transition inserts the alert if it is unknown. A resolved one inserts it resolved
    or moves a firing row to resolved; nothing ever goes back to firing, and a redelivered
    transition is a no-op. Call `lock_alerts` first in the same transaction.
    """
    next_seq = select(func.coalesce(func.max(AlertRow.seq), 0) + 1).scalar_subquery()
    values: dict[str, Any] = {
        "alert_id": alert.alert_id,
        "seq": next_seq,
        "state": alert.state,
        "kind": alert.kind,
        "rule": alert.rule,
        "rep_id": alert.rep_id,
        "team_id": alert.team_id,
        "kpi": alert.kpi,
        "window": alert.window,
        "value": alert.value,
        "threshold": alert.threshold,
        "messages": {"en": alert.message_en, "zh": alert.message_zh},
        "at": alert.at,
        "fired_at": alert.fired_at,
        "resolved_at": alert.resolved_at,
        "updated_at": now,
    }
    stmt = _insert(session, AlertRow).values(values)
    if alert.state == "firing":
        stmt = stmt.on_conflict_do_nothing(index_elements=[AlertRow.alert_id])
    else:
        changed = ("seq", "state", "value", "threshold", "messages", "at", "resolved_at")
        stmt = stmt.on_conflict_do_update(
            index_elements=[AlertRow.alert_id],
            set_={name: stmt.excluded[name] for name in (*changed, "updated_at")},
            where=AlertRow.state == "firing",
        )
    result = await session.execute(stmt.returning(AlertRow.seq))
    seq = result.scalar_one_or_none()
    return None if seq is None else int(seq)


async def add_deliveries(
    session: AsyncSession, alert: Alert, channels: Sequence[str], now: datetime
) -> None:
    """One pending delivery of this transition per channel; existing ones are kept as they are.

    `ON CONFLICT (alert_id, state, channel) DO NOTHING`: however many replicas or redeliveries
    get here, a transition notifies each channel once.
    """
    if not channels:
        return
    payload = alert.model_dump(mode="json")
    rows = [
        {
            "alert_id": alert.alert_id,
            "state": alert.state,
            "channel": channel,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "payload": payload,
            "created_at": now,
        }
        for channel in dict.fromkeys(channels)
    ]
    stmt = _insert(session, AlertDelivery).values(rows)
    await session.execute(
        stmt.on_conflict_do_nothing(
            index_elements=[AlertDelivery.alert_id, AlertDelivery.state, AlertDelivery.channel]
        )
    )


async def get_alert(session: AsyncSession, alert_id: str) -> AlertRow | None:
    """One alert row, read fresh from the database."""
    stmt = (
        select(AlertRow)
        .where(AlertRow.alert_id == alert_id)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).first()


async def list_alerts(
    session: AsyncSession,
    *,
    state: str | None = None,
    team_id: str | None = None,
    rep_id: str | None = None,
    limit: int = 100,
) -> Sequence[AlertRow]:
    """Alerts, newest fired first, filtered by state, team and rep."""
    stmt = select(AlertRow).order_by(AlertRow.fired_at.desc(), AlertRow.alert_id).limit(limit)
    if state is not None:
        stmt = stmt.where(AlertRow.state == state)
    if team_id is not None:
        stmt = stmt.where(AlertRow.team_id == team_id)
    if rep_id is not None:
        stmt = stmt.where(AlertRow.rep_id == rep_id)
    return (await session.scalars(stmt)).all()


async def alerts_since(
    session: AsyncSession, after: int, *, team_id: str | None = None, limit: int = 500
) -> Sequence[AlertRow]:
    """Alerts whose latest transition has a seq above `after`, in seq order."""
    stmt = select(AlertRow).where(AlertRow.seq > after).order_by(AlertRow.seq).limit(limit)
    if team_id is not None:
        stmt = stmt.where(AlertRow.team_id == team_id)
    return (await session.scalars(stmt)).all()


async def max_alert_seq(session: AsyncSession) -> int:
    """The seq of the latest stored transition (0 when there is none)."""
    stmt = select(func.coalesce(func.max(AlertRow.seq), 0))
    return int((await session.execute(stmt)).scalar_one())


async def ack_alert(
    session: AsyncSession, alert_id: str, by: str, now: datetime
) -> AlertRow | None:
    """Acknowledge an alert once (a repeated ack keeps the first); None if it is unknown."""
    await session.execute(
        update(AlertRow)
        .where(AlertRow.alert_id == alert_id, AlertRow.acked_at.is_(None))
        .values(acked_at=now, acked_by=by)
    )
    return await get_alert(session, alert_id)


async def deliveries_of(
    session: AsyncSession, alert_ids: Sequence[str]
) -> dict[str, list[AlertDelivery]]:
    """The deliveries of some alerts, by alert id, oldest first."""
    if not alert_ids:
        return {}
    stmt = (
        select(AlertDelivery)
        .where(AlertDelivery.alert_id.in_(list(alert_ids)))
        .order_by(AlertDelivery.id)
        .execution_options(populate_existing=True)
    )
    out: dict[str, list[AlertDelivery]] = {}
    for row in await session.scalars(stmt):
        out.setdefault(row.alert_id, []).append(row)
    return out


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this dispatcher holds until its lease ends: send it, then `finish_delivery`."""

    id: int
    alert_id: str
    state: str
    channel: str
    attempts: int
    payload: dict[str, Any]


async def claim_deliveries(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedDelivery]:
    """Claim due pending deliveries: count the attempt and hide them until `lease_until`.

    On PostgreSQL the candidates are locked with `FOR UPDATE SKIP LOCKED`, so replicas claim
    disjoint sets; the UPDATE re-checks the conditions, which is the whole claim on SQLite.
    A resolved delivery waits while the same channel's firing delivery is still pending, so a
    channel never hears "resolved" before "firing".
    """
    candidate, firing = aliased(AlertDelivery), aliased(AlertDelivery)
    earlier_pending = exists().where(
        firing.alert_id == candidate.alert_id,
        firing.channel == candidate.channel,
        firing.state == "firing",
        firing.status == "pending",
    )
    due = (
        select(candidate.id)
        .where(
            candidate.status == "pending",
            candidate.next_attempt_at <= now,
            or_(candidate.state == "firing", ~earlier_pending),
        )
        .order_by(candidate.next_attempt_at, candidate.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=candidate)
    )
    ids = list((await session.scalars(due)).all())
    if not ids:
        return []
    stmt = (
        update(AlertDelivery)
        .where(
            AlertDelivery.id.in_(ids),
            AlertDelivery.status == "pending",
            AlertDelivery.next_attempt_at <= now,
        )
        .values(attempts=AlertDelivery.attempts + 1, next_attempt_at=lease_until)
        .returning(
            AlertDelivery.id,
            AlertDelivery.alert_id,
            AlertDelivery.state,
            AlertDelivery.channel,
            AlertDelivery.attempts,
            AlertDelivery.payload,
        )
    )
    rows = (await session.execute(stmt)).all()
    return sorted((ClaimedDelivery(*row) for row in rows), key=lambda c: c.id)


async def finish_delivery(
    session: AsyncSession,
    claimed: ClaimedDelivery,
    *,
    sent_at: datetime | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Record an attempt's outcome: sent (`sent_at`), retry later (`retry_at`) or failed.

    Only while the claim still holds (same attempt count, still pending): a dispatcher whose
    lease ran out does not overwrite the outcome of the one that claimed it next.
    """
    values: dict[str, Any]
    if sent_at is not None:
        values = {"status": "sent", "sent_at": sent_at, "last_error": None}
    elif retry_at is not None:
        values = {"next_attempt_at": retry_at, "last_error": error}
    else:
        values = {"status": "failed", "last_error": error}
    result = await session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.id == claimed.id,
            AlertDelivery.attempts == claimed.attempts,
            AlertDelivery.status == "pending",
        )
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


async def get_channels(session: AsyncSession, team_id: str) -> list[dict[str, Any]] | None:
    """A team's stored channels (secrets in clear), or None when it configured none."""
    row = await session.get(AlertChannelsRow, team_id, populate_existing=True)
    return None if row is None else list(row.channels)


async def set_channels(
    session: AsyncSession, team_id: str, channels: Sequence[Mapping[str, Any]]
) -> None:
    """Replace a team's channels."""
    row = {"team_id": team_id, "channels": [dict(c) for c in channels], "updated_at": utcnow()}
    await session.execute(_upsert(session, AlertChannelsRow, [row], ["team_id"]))


async def delete_channels(session: AsyncSession, team_id: str) -> bool:
    """Forget a team's channels (it falls back to the defaults); False if it had none."""
    result = await session.execute(
        delete(AlertChannelsRow).where(AlertChannelsRow.team_id == team_id)
    )
    return bool(getattr(result, "rowcount", 0))


# --- reports --------------------------------------------------------------------------------


def _within(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def _facts_in(start: datetime, end: datetime, team_id: str | None) -> ColumnElement[bool]:
    """Facts landing in [start, end), of one team's calls or of all."""
    condition = _within(CallFactRow.at, start, end)
    if team_id is not None:
        condition = and_(condition, CallFactRow.team_id == team_id)
    return condition


def _natural(kpi: str, total: Any) -> int | float:
    """A counter's total as reports show it: calls as ints, seconds and currency as floats.

    Facts are exact to 1/10,000; SQLite sums them as floats, so round back to that first
    (PostgreSQL's exact sum is unchanged by it)."""
    if kpi in _FLOAT_COUNTERS:
        return float(round(Decimal(str(total)), 4))
    return int(total)


async def daily_totals(
    session: AsyncSession, start: datetime, end: datetime, *, team_id: str | None
) -> dict[str, dict[str, Any]]:
    """Additive KPI totals per rep (by rep id) over [start, end), from the stored call facts.

    Each fact counts at the time the KPI rule table lands it (a dial at the call's first
    moment, a connect at the answer, talk at the end, a sale at its outcome, a survey at its
    time), to the rep the call belongs to, exactly as the live windows count it.
    """
    stmt = (
        select(CallFactRow.rep_id, CallFactRow.kpi, func.sum(CallFactRow.value))
        .where(_facts_in(start, end, team_id), CallFactRow.kpi.in_(ADDITIVE))
        .group_by(CallFactRow.rep_id, CallFactRow.kpi)
    )
    out: dict[str, dict[str, Any]] = {}
    for rep_id, kpi, total in await session.execute(stmt):
        totals = out.setdefault(rep_id, {k: _natural(k, 0) for k in ADDITIVE})
        totals[kpi] = _natural(kpi, total)
    return dict(sorted(out.items()))


_HOURLY = ("dials", "connects", "inbound_calls")


async def hourly_profile(
    session: AsyncSession, start: datetime, end: datetime, *, team_id: str | None, timezone: str
) -> dict[int, tuple[int, int]]:
    """Outbound dials and outbound connects by local hour of day over [start, end).

    Like the live hourly profile, each counts in the hour its fact lands: a dial at the call's
    first moment, a connect (less the inbound ones) at the answer.
    """
    condition = and_(_facts_in(start, end, team_id), CallFactRow.kpi.in_(_HOURLY))
    sums: dict[int, dict[str, int]] = {}
    if session.get_bind().dialect.name == "postgresql":
        hour = func.extract("hour", func.timezone(timezone, CallFactRow.at))
        # By position: the hour expression carries a bound zone, which PostgreSQL would not
        # recognise as the same expression twice.
        stmt = (
            select(hour, CallFactRow.kpi, func.sum(CallFactRow.value))
            .where(condition)
            .group_by(text("1"), CallFactRow.kpi)
        )
        for hour_of_day, kpi, total in await session.execute(stmt):
            sums.setdefault(int(hour_of_day), {})[kpi] = int(total)
    else:
        # SQLite has no time zones: bucket in Python (embedded mode serves small floors).
        zone = ZoneInfo(timezone)
        rows = select(CallFactRow.at, CallFactRow.kpi, CallFactRow.value).where(condition)
        for at, kpi, value in await session.execute(rows):
            point = sums.setdefault(at.astimezone(zone).hour, {})
            point[kpi] = point.get(kpi, 0) + int(value)
    return {
        hour_of_day: (
            point.get("dials", 0),
            point.get("connects", 0) - point.get("inbound_calls", 0),
        )
        for hour_of_day, point in sorted(sums.items())
    }
