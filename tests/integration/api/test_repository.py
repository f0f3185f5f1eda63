"""The repository on the real PostgreSQL: migrations and idempotent call upserts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.calls import CallRecord
from schemas.roster import Rep, Shift, Target, Targets, Team
from services.api.db import repository
from services.api.db.engine import migrate
from services.api.db.models import Call

T0 = datetime(2025, 3, 12, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def record(call_id: str, version: int, **fields: object) -> CallRecord:
    base: dict[str, object] = {
        "call_id": call_id,
        "version": version,
        "rep_id": "rep-1",
        "team_id": "team-1",
        "direction": "outbound",
        "started_at": T0,
        "last_event_at": T0 + timedelta(seconds=version),
        "facts": [],
    }
    return CallRecord.model_validate({**base, **fields})


async def count(session: AsyncSession, call_id: str) -> int:
    stmt = select(func.count()).select_from(Call).where(Call.call_id == call_id)
    return int((await session.execute(stmt)).scalar_one())


async def test_migrate_is_idempotent(postgres_url: str) -> None:
    await migrate(postgres_url)
    await migrate(postgres_url)


async def test_the_same_record_twice_is_one_row(db_session: AsyncSession, unique: str) -> None:
    call = record(f"c-{unique}", 1)
    await repository.upsert_calls(db_session, [call])
    await repository.upsert_calls(db_session, [call])
    assert await count(db_session, call.call_id) == 1
    assert await repository.get_call(db_session, call.call_id) == call


async def test_an_older_version_after_a_newer_changes_nothing(
    db_session: AsyncSession, unique: str
) -> None:
    call_id = f"c-{unique}"
    newer = record(
        call_id,
        3,
        answered_at=T0 + timedelta(seconds=10),
        ended_at=T0 + timedelta(minutes=6),
        end_status="completed",
        connected=True,
        talk_seconds=350,
        outcome="sale",
        outcome_at=T0 + timedelta(minutes=7),
        amount=Decimal("99.50"),
    )
    older = record(call_id, 2, answered_at=T0 + timedelta(seconds=10), connected=True)
    await repository.upsert_calls(db_session, [newer])
    await repository.upsert_calls(db_session, [older])
    await repository.upsert_calls(db_session, [record(call_id, 1), newer])
    assert await count(db_session, call_id) == 1
    stored = await repository.get_call(db_session, call_id)
    assert stored == newer
    assert stored is not None
    assert stored.started_at == T0.astimezone(UTC)


async def test_a_batch_may_repeat_a_call(db_session: AsyncSession, unique: str) -> None:
    ids = [f"c{i}-{unique}" for i in range(3)]
    batch = [record(ids[i % 3], v) for v in (2, 1, 3) for i in range(3)]
    assert await repository.upsert_calls(db_session, batch) == 3
    for call_id in ids:
        stored = await repository.get_call(db_session, call_id)
        assert stored is not None
        assert stored.version == 3


async def test_a_newer_version_replaces(db_session: AsyncSession, unique: str) -> None:
    call_id = f"c-{unique}"
    await repository.upsert_calls(db_session, [record(call_id, 1)])
    await repository.upsert_calls(db_session, [record(call_id, 2, outcome="callback")])
    stored = await repository.get_call(db_session, call_id)
    assert stored is not None
    assert (stored.version, stored.outcome) == (2, "callback")


async def test_roster_round_trip(db_session: AsyncSession, unique: str) -> None:
    team = Team(
        team_id=f"t-{unique}", name="North", timezone="Asia/Shanghai", shift=Shift(days=[1])
    )
    rep = Rep(rep_id=f"r-{unique}", name="Li", team_id=team.team_id, external_ids={"aircall": "7"})
    targets = Targets(subject="rep", subject_id=rep.rep_id, targets=[Target(kpi="dials", value=50)])
    await repository.upsert_team(db_session, team)
    await repository.upsert_team(db_session, team.model_copy(update={"name": "North 2"}))
    await repository.upsert_rep(db_session, rep)
    await repository.set_targets(db_session, targets)
    assert await repository.get_team(db_session, team.team_id) == team.model_copy(
        update={"name": "North 2"}
    )
    assert await repository.reps_of_team(db_session, team.team_id) == [rep]
    assert await repository.get_targets(db_session, "rep", rep.rep_id) == targets
    assert await repository.get_rep(db_session, "nobody-" + unique) is None
