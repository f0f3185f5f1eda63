"""Property: the history reports agree with the reference fold, day by day and hour by hour.

Random call logs around a local midnight in Asia/Shanghai (calls that start before it and end
after, calls of which only the end arrives, inbound and outbound, transfers, outcome corrections,
surveys) are shuffled and duplicated and sent through the embedded driver of the aggregator core.
Its live day buckets, and the daily report and hourly profile over every record it emits (stored
as the storing consumer would, stale versions included), must all equal what the reference fold
counts for that day and hour, on SQLite (embedded mode) and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from schemas.calls import CallRecord
from schemas.events import CallEnded, CallEvent, parse_event
from schemas.kpis import ADDITIVE, kpi_values
from services.aggregator.core import Aggregator, Cadence, MemoryStore
from services.aggregator.domain.calls import Rules
from services.aggregator.domain.counters import derive
from services.aggregator.domain.reference import fold
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.api.db import repository
from services.api.db.engine import create_engine, migrate
from services.standalone.engine import EmbeddedEngine
from services.standalone.eventlog import SqliteEventLog

TIMEZONE = "Asia/Shanghai"
ZONE = ZoneInfo(TIMEZONE)
MIDNIGHT = datetime(2026, 3, 15, tzinfo=ZONE)
NOW = MIDNIGHT + timedelta(days=2)
"""The live side's clock: after every event of a log, with every day still in its buckets."""
Live = dict[date, dict[str, dict[str, Any]]]
REPS = ("r1", "r2", "r3")
RULES = Rules(forgotten_retention_seconds=400 * 86400.0)
"""The events of a day in March are sent now: a call's event ids are kept long enough for them
all to count live (the rules for events this late are another test's: test_exactness)."""
EXAMPLES = 30


async def live(events: Sequence[CallEvent]) -> tuple[list[CallRecord], Live]:
    """Send the events through the embedded driver, a few at a time: the call records it emits
    for history (in emission order) and its live KPIs per local day and rep."""
    records: list[CallRecord] = []

    async def keep(batch: list[CallRecord]) -> None:
        records.extend(batch)

    core = Aggregator.build(
        MemoryStore(), MemoryStore(), rules=RULES, roster=RosterView(TIMEZONE), metrics=Metrics()
    )
    with tempfile.TemporaryDirectory() as folder:
        log = SqliteEventLog(Path(folder) / "events.db")
        engine = EmbeddedEngine(log, core, Cadence(), lambda snap: None, keep, clock=lambda: NOW)
        await log.open()
        try:
            for first in range(0, len(events), 3):
                await engine.publish(events[first : first + 3])
                await engine.flush()
        finally:
            await log.close()
    days: Live = {}
    for rep_id in core.reps.held():
        for key, bucket in core.reps.state(rep_id).days.items():
            values = derive(bucket)
            if values != ZERO:
                days.setdefault(date.fromisoformat(key), {})[rep_id] = values
    return records, days


# --- event logs ----------------------------------------------------------------------------


@st.composite
def call_events(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    """The raw events of one call: any part of its lifecycle, within hours of MIDNIGHT."""
    call_id = f"c{index}"
    offset = draw(st.one_of(st.integers(-3 * 3600, 3 * 3600), st.sampled_from([-10, -1, 0])))
    start = MIDNIGHT + timedelta(seconds=offset)
    direction = draw(st.sampled_from(["outbound", "inbound"]))
    rep, other = draw(st.sampled_from(REPS)), draw(st.sampled_from(REPS))
    talk = draw(st.sampled_from([0, 12.5, 40, 299.999, 300, 1234.567]))
    raw: list[dict[str, Any]] = []

    def add(type_: str, at: datetime, **fields: Any) -> None:
        event_id = f"{call_id}-{len(raw)}"
        raw.append(
            {"type": type_, "call_id": call_id, "occurred_at": at, "event_id": event_id, **fields}
        )

    if draw(st.booleans()):
        add(
            "call.started",
            start,
            rep_id=None if direction == "inbound" else rep,  # inbound: the rep is known later
            direction=direction,
        )
    answered = start + timedelta(seconds=draw(st.integers(1, 60)))
    if draw(st.booleans()):
        add("call.answered", answered, rep_id=rep)
    end = answered + timedelta(seconds=talk)
    if draw(st.booleans()):  # often the only event: a CDR
        status = draw(st.sampled_from(["completed", "no_answer", "busy", "failed"]))
        cdr = draw(st.booleans())
        add(
            "call.ended",
            end,
            rep_id=draw(st.sampled_from([rep, other])),  # maybe transferred
            end_status=status,
            direction=direction,
            talk_seconds=talk if status == "completed" else None,
            started_at=start if cdr else None,
            answered_at=answered if cdr and status == "completed" else None,
        )
    # Corrections: sale, then not_interested, maybe sale again; equal times happen too.
    for _ in range(draw(st.integers(0, 3))):
        add(
            "call.outcome",
            end + timedelta(seconds=draw(st.sampled_from([5, 30, 600, 5400]))),
            rep_id=rep,
            outcome=draw(st.sampled_from(["sale", "not_interested", "callback"])),
            amount=draw(st.sampled_from([None, "0", "19.99", "1200.5001"])),
        )
    for _ in range(draw(st.integers(0, 2))):
        add(
            "survey.completed",
            end + timedelta(minutes=draw(st.sampled_from([1, 20, 240]))),
            rep_id=rep,
            csat=draw(st.integers(1, 5)),
        )
    return raw


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(each event once, the log as delivered: shuffled, with duplicates)."""
    events = [e for i in range(draw(st.integers(1, 10))) for e in draw(call_events(i))]
    dupes = draw(st.lists(st.sampled_from(events), max_size=len(events))) if events else []
    return events, draw(st.permutations(events + dupes))


def tag(raw: Sequence[dict[str, Any]], prefix: str) -> list[CallEvent]:
    """Events with this example's own ids (PostgreSQL is shared with other tests)."""
    return [
        parse_event(
            {
                **r,
                "call_id": f"{prefix}-{r['call_id']}",
                "team_id": f"team-{prefix}",
                "rep_id": None if r.get("rep_id") is None else f"{prefix}-{r['rep_id']}",
            }
        )
        for r in raw
    ]


# --- the reference, per local day and hour -------------------------------------------------


def local_days(events: Sequence[CallEvent]) -> list[date]:
    """Every local date any time of the log falls on."""
    times: list[datetime | None] = [e.occurred_at for e in events]
    times += [t for e in events if isinstance(e, CallEnded) for t in (e.started_at, e.answered_at)]
    return sorted({t.astimezone(ZONE).date() for t in times if t is not None})


def at(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=ZONE)


ZERO = kpi_values(**dict.fromkeys(ADDITIVE, 0))


def reference_day(events: Sequence[CallEvent], day: date) -> dict[str, dict[str, Any]]:
    """KPIs per rep on one local day: the reference's `today` at its noon."""
    per_rep = fold(events, at(day, 12), rules=RULES, default_timezone=TIMEZONE)
    return {rep: windows["today"] for rep, windows in per_rep.items() if windows["today"] != ZERO}


def reference_hours(events: Sequence[CallEvent], days: Sequence[date]) -> dict[int, list[int]]:
    """Outbound dials and connects by local hour of day over `days`: the reference's `hour`
    window at the end of every hour, summed over reps and days."""
    hours: dict[int, list[int]] = {}
    for day in days:
        for hour in range(24):
            per_rep = fold(events, at(day, hour, 59, 30), rules=RULES, default_timezone=TIMEZONE)
            point = hours.setdefault(hour, [0, 0])
            for windows in per_rep.values():
                values = windows["hour"]
                point[0] += values["dials"]
                point[1] += values["connects"] - values["inbound_calls"]
    return {h: p for h, p in hours.items() if p != [0, 0]}


# --- the databases -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database for history: a fresh SQLite file, or the shared PostgreSQL test database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/history.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def history_engine(history_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated database."""
    await migrate(history_url)
    engine = create_engine(history_url)
    yield engine
    await engine.dispose()


async def history_reports(
    session: AsyncSession, team_id: str, days: Sequence[date]
) -> tuple[dict[date, dict[str, dict[str, Any]]], dict[int, list[int]]]:
    """The daily report of every day and the hourly profile over all of them."""
    if not days:
        return {}, {}
    daily = {}
    for day in days:
        per_rep = await repository.daily_totals(
            session, at(day), at(day + timedelta(days=1)), team_id=team_id
        )
        daily[day] = {rep: kpi_values(**totals) for rep, totals in per_rep.items()}
    hours = await repository.hourly_profile(
        session, at(days[0]), at(days[-1] + timedelta(days=1)), team_id=team_id, timezone=TIMEZONE
    )
    return daily, {h: list(p) for h, p in hours.items() if p != (0, 0)}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(log=logs(), data=st.data())
async def test_history_reports_equal_the_reference_fold(
    history_engine: AsyncEngine,
    log: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    data: st.DataObject,
) -> None:
    prefix = uuid.uuid4().hex[:10]
    events, delivered = tag(log[0], prefix), tag(log[1], prefix)
    records, live_days = await live(delivered)
    # The storing consumer sees every record at least once, in batches, and stale ones again.
    stale = (
        data.draw(st.lists(st.sampled_from(records), max_size=len(records)), label="stale")
        if records
        else []
    )
    stored = records + stale
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stored))), label="cuts") | {0, len(stored)})
    days = local_days(events)
    async with history_engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint")
        try:
            for first, last in itertools.pairwise(cuts):
                await repository.upsert_calls(session, stored[first:last])
            daily, hours = await history_reports(session, f"team-{prefix}", days)
        finally:
            await session.close()
            await transaction.rollback()
    for day in days:
        assert daily[day] == reference_day(events, day), day
        assert live_days.get(day, {}) == daily[day], day
    assert hours == reference_hours(events, days)


@settings(max_examples=100, deadline=None)
@given(log=logs())
async def test_legacy_facts_follow_the_rule_table(
    log: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    # What a record without facts is credited from its columns (and migration 0003 backfills)
    # is what the rule table credited it, but for a survey's time, which records lack.
    def comparable(facts: Iterable[Any]) -> list[tuple[str, datetime | None, Any]]:
        return [(f.kpi, None if f.kpi.startswith("csat") else f.at, f.value) for f in facts]

    records, _ = await live(tag(log[1], "p"))
    for record in records:
        assert comparable(repository.legacy_facts(record)) == comparable(record.facts), record
