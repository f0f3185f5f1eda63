"""Standings against a brute-force reference fold: random calls around both DST changes of
America/New_York, stored as shuffled and duplicated record versions in batches through the
live path (SQLite history + `CompetitionService.on_stored`), scored by daily, weekly,
weekdays and monthly competitions with random weights and minimums.

The reference reads each call's newest version, files each fact under the local calendar key
of its own time (date, ISO week, weekday week, month) and ranks by counting strictly higher
qualified scores; it shares no code with the service but the KPI formulas (`kpi_values`)."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.calls import CallRecord
from schemas.competitions import CompetitionIn
from schemas.kpis import ADDITIVE, kpi_values
from services.api.competitions.announce import Announcer
from services.api.competitions.service import CompetitionService
from services.api.consumers import calls_store
from services.api.db.engine import create_engine, create_sessionmaker
from services.api.db.models import Base
from tests.unit.competitions.records import record

ZONE = ZoneInfo("America/New_York")
DST = (datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC))
REPS = ("r0", "r1", "r2")
TERMS = ("dials", "conversions", "conversations", "talk_seconds", "revenue", "conversion_rate")


def _key(kind: str, at: datetime) -> tuple[int, ...] | None:
    local = at.astimezone(ZONE)
    year, week, weekday = local.isocalendar()
    if kind == "daily":
        return (local.year, local.month, local.day)
    if kind == "weekly":
        return (year, week)
    if kind == "weekdays":
        return (year, week) if weekday <= 5 else None
    return (local.year, local.month)


def reference(
    records: list[CallRecord], competition: CompetitionIn, now: datetime
) -> dict[str, tuple[int | None, float, bool]]:
    newest: dict[str, CallRecord] = {}
    for r in records:
        if r.call_id not in newest or r.version > newest[r.call_id].version:
            newest[r.call_id] = r
    want = _key(competition.period.kind, now)
    sums = {rep: dict.fromkeys(ADDITIVE, 0.0) for rep in REPS}
    if want is not None:
        for r in newest.values():
            for f in r.facts:
                if r.rep_id is not None and _key(competition.period.kind, f.at) == want:
                    sums[r.rep_id][f.kpi] += float(f.value)
    out: dict[str, tuple[float, bool]] = {}
    for rep, totals in sums.items():
        values = kpi_values(**totals)
        score = round(sum(t.weight * float(values[t.kpi] or 0) for t in competition.score), 6)
        ok = all(
            values[m.kpi] is not None and values[m.kpi] >= m.at_least for m in competition.minimums
        )
        out[rep] = (score, ok)
    return {
        rep: (
            1 + sum(1 for s, q in out.values() if q and s > score) if ok else None,
            score,
            ok,
        )
        for rep, (score, ok) in out.items()
    }


@st.composite
def calls(draw: Any) -> list[CallRecord]:
    made: list[CallRecord] = []
    for n in range(draw(st.integers(1, 14))):
        around = draw(st.sampled_from(DST))
        start = around + timedelta(minutes=draw(st.integers(-4 * 1440, 4 * 1440)))
        rep = draw(st.sampled_from(REPS))
        for version in range(1, draw(st.integers(1, 3)) + 1):
            talk = draw(st.sampled_from([0, 60, 150, 320]))
            sale = draw(st.sampled_from([None, Decimal("0"), Decimal("99.5")]))
            made.append(record(f"c{n}", rep, "t", start, version=version, talk=talk, sale=sale))
    duplicates = draw(st.lists(st.sampled_from(made), max_size=4))
    return draw(st.permutations(made + duplicates))


@st.composite
def competitions(draw: Any) -> CompetitionIn:
    terms = draw(st.lists(st.sampled_from(TERMS), min_size=1, max_size=3, unique=True))
    weights = [draw(st.sampled_from([1, 2.5, 10, -1])) for _ in terms]
    minimums = draw(
        st.sampled_from(
            [[], [{"kpi": "avg_talk_seconds", "at_least": 100}], [{"kpi": "dials", "at_least": 2}]]
        )
    )
    return CompetitionIn.model_validate(
        {
            "name": "ref",
            "participants": {"rep_ids": list(REPS)},
            "score": [{"kpi": k, "weight": w} for k, w in zip(terms, weights, strict=True)],
            "minimums": minimums,
            "period": {
                "kind": draw(st.sampled_from(["daily", "weekly", "weekdays", "monthly"])),
                "start": "2026-01-01T00:00:00",
            },
            "timezone": "America/New_York",
            "announce": False,
        }
    )


async def live(
    records: list[CallRecord], competition: CompetitionIn, now: datetime, batch: int
) -> dict[str, tuple[int | None, float, bool]]:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(folder) / 'h.db'}")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            sessions = create_sessionmaker(engine)

            async def no_channels(_: Any) -> list[Any]:
                return []

            service = CompetitionService(
                sessions, Announcer(sessions, no_channels), clock=lambda: now
            )
            created = await service.create(competition)
            store = calls_store(sessions, 300, after=service.on_stored)
            for i in range(0, len(records), batch):
                await store(records[i : i + batch])
            standings = await service.standings(created.id)
        finally:
            await engine.dispose()
    assert standings is not None
    return {r.participant_id: (r.rank, r.score, r.qualified) for r in standings.rows}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=calls(),
    competition=competitions(),
    around=st.sampled_from(DST),
    offset=st.integers(-3 * 1440, 3 * 1440),
    batch=st.integers(1, 5),
)
def test_standings_match_the_reference(
    records: list[CallRecord], competition: CompetitionIn, around: datetime, offset: int, batch: int
) -> None:
    now = around + timedelta(minutes=offset)
    got = asyncio.run(live(records, competition, now, batch))
    expected = reference(records, competition, now)
    if _key(competition.period.kind, now) is None:
        assert got == {}  # a weekend of a weekdays competition: no running period
    else:
        assert got == expected
