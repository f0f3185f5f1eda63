"""Coaching against the reference fold, on generated history of five weeks of two teams (New
York across its DST change, Shanghai), and the embedded mode (SQLite) answering exactly as the
distributed API (PostgreSQL) does.

Scorecard values and the previous period's are the fold's calendar windows at the period's
last second; medians are taken over the fold's values of the team's reps; the weekday x hour
cells and the lost dials are summed straight from the plan each call was generated from.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.competitions import CompetitionIn
from schemas.events import CallEvent
from schemas.kpis import ADDITIVE, KPI_NAMES, kpi_values
from services.aggregator.domain.reference import fold
from services.api.coaching.periods import span
from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker
from services.api.db.models import CompetitionResultRow, CompetitionRow, DigestSettingsRow
from services.standalone.main import create_app as create_embedded
from tests.integration.api.coaching_history import RULES, History, PlannedCall, generate
from tests.integration.api.conftest import ApiFactory

pytestmark = pytest.mark.timeout(600)
CASES: tuple[tuple[str, date], ...] = (
    ("day", date(2026, 3, 8)),  # New York's DST day: 23 hours
    ("day", date(2026, 2, 20)),
    ("week", date(2026, 3, 4)),  # the week before the change, whose previous week is whole
    ("week", date(2026, 3, 11)),  # the week after it, compared with the week containing it
    ("month", date(2026, 3, 20)),
    ("month", date(2026, 2, 17)),  # the previous month is empty
)
WINDOW = {"day": "today", "week": "week", "month": "month"}
TEAM_TARGETS = [
    {"kpi": "avg_talk_seconds", "window": "week", "value": 300},
    {"kpi": "dials", "window": "week", "value": 40},
    {"kpi": "dials", "window": "today", "value": 8},
    {"kpi": "conversions", "window": "month", "value": 30},
]


@pytest.fixture
async def embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unique: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The embedded app (`callpulse run`) on its own SQLite files, with an admin key."""
    monkeypatch.setenv("CALLPULSE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}")
    monkeypatch.setenv("CALLPULSE_BOOTSTRAP_ADMIN_KEY", f"cp_admin_{unique}")
    monkeypatch.setenv("CALLPULSE_TIMEZONE", "UTC")
    app = create_embedded(tmp_path / "data")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emb") as client:
            client.headers["Authorization"] = f"Bearer cp_admin_{unique}"
            client.app = app  # type: ignore[attr-defined]
            yield client


async def _roster(client: httpx.AsyncClient, history: History) -> None:
    for team, timezone in history.teams.items():
        assert (await client.put(f"/v1/teams/{team}", json={"timezone": timezone})).is_success
        put = await client.put(f"/v1/teams/{team}/targets", json={"targets": TEAM_TARGETS})
        assert put.is_success, put.text
    for rep, team in history.reps.items():
        assert (await client.put(f"/v1/reps/{rep}", json={"team_id": team})).is_success


async def _store(url: str, history: History) -> None:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            await repository.upsert_calls(session, history.records())
    finally:
        await engine.dispose()


# --- the reference ---------------------------------------------------------------------------


def _window(history: History, window: str, last: datetime) -> dict[str, dict[str, Any]]:
    """The fold's values of one calendar window per rep, at the window's last second."""
    per_rep = fold(history.events, last, timezones=history.timezones(), rules=RULES)
    zero = kpi_values(**dict.fromkeys(ADDITIVE, 0))
    return {rep: per_rep.get(rep, {}).get(window, zero) for rep in history.reps}  # type: ignore[call-overload]


def _sum(values: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return kpi_values(**{name: sum(v[name] for v in values) for name in ADDITIVE})


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 6) if present else None


def _check_scorecards(
    body: dict[str, Any],
    cards: dict[str, dict[str, Any]],
    history: History,
    team: str,
    period: str,
    day: date,
) -> None:
    """The team view and every rep's scorecard against the fold."""
    s = span(period, day, history.teams[team])  # type: ignore[arg-type]
    second = timedelta(seconds=1)
    now = _window(history, WINDOW[period], s.end - second)
    before = _window(history, WINDOW[period], s.previous_end - second)
    members = sorted(rep for rep, t in history.reps.items() if t == team)
    assert body["team_size"] == len(members)
    assert [r["rep_id"] for r in body["reps"]] == members
    targets = {(t["kpi"], t["window"]): t["value"] for t in TEAM_TARGETS}
    for row in body["reps"]:
        rep = row["rep_id"]
        card = cards[rep]
        lines = {line["kpi"]: line for line in card["lines"]}
        assert set(lines) == set(KPI_NAMES)
        assert row["values"] == {kpi: line["value"] for kpi, line in lines.items()}
        assert row["findings"] == [f["rule"] for f in card["findings"]]
        for kpi, line in lines.items():
            assert line["value"] == now[rep][kpi], (rep, kpi)
            assert line["previous"] == before[rep][kpi], (rep, kpi)
            assert line["team_median"] == _median([now[m][kpi] for m in members]), kpi
            assert line["target"] == targets.get((kpi, WINDOW[period]))
    team_values = _sum([now[m] for m in members])
    for ranking in body["rankings"]:
        assert ranking["team_value"] == team_values[ranking["kpi"]]
        gaps = [b["gap"] for b in ranking["below"]]
        assert gaps == sorted(gaps)
        assert all(g < 0 for g in gaps)


def _in(at: datetime | None, start: datetime, end: datetime) -> bool:
    return at is not None and start <= at < end


def _losses(
    calls: Sequence[PlannedCall], start: datetime, end: datetime
) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for c in calls:
        if c.inbound or not _in(c.started, start, end) or c.outcome == "sale":
            continue
        key = ("connected", c.outcome or "none") if c.answered else ("not_connected", c.status)
        out[key] = out.get(key, 0) + 1
    return out


def _cells(
    calls: Sequence[PlannedCall], start: datetime, end: datetime, zone: ZoneInfo
) -> dict[tuple[int, int], dict[str, int]]:
    out: dict[tuple[int, int], dict[str, int]] = {}

    def add(kpi: str, at: datetime | None) -> None:
        if at is not None and _in(at, start, end):
            local = at.astimezone(zone)
            cell = out.setdefault((local.isoweekday(), local.hour), dict.fromkeys(ADDITIVE, 0))
            cell[kpi] += 1

    for c in calls:
        if not c.inbound:
            add("dials", c.started)
        add("connects", c.answered)
        if c.inbound:
            add("inbound_calls", c.answered)
        if c.outcome == "sale":
            add("conversions", c.outcome_at)
    return out


def _events_of(calls: Sequence[PlannedCall]) -> list[CallEvent]:
    return [e for c in calls for e in c.events]


# --- the test --------------------------------------------------------------------------------


async def test_coaching_equals_the_reference_fold_in_both_modes(
    api_factory: ApiFactory, embedded: httpx.AsyncClient, unique: str
) -> None:
    history = generate(f"k{unique}")
    distributed = await api_factory()
    await _roster(distributed.client, history)
    await _roster(embedded, history)
    await _store(distributed.settings.DATABASE_URL, history)
    await _store(embedded.app.state.callpulse_api.settings.DATABASE_URL, history)  # type: ignore[attr-defined]

    async def both(path: str, **params: Any) -> dict[str, Any]:
        """The distributed answer, after checking the embedded one is the same."""
        one = await distributed.client.get(path, params=params)
        two = await embedded.get(path, params=params)
        assert one.status_code == 200, one.text
        assert one.json() == two.json(), path
        body: dict[str, Any] = one.json()
        return body

    for team, timezone in history.teams.items():
        calls = [c for c in history.calls if c.team_id == team]
        for period, day in CASES:
            params = {"period": period, "date": day.isoformat()}
            body = await both(f"/v1/teams/{team}/scorecard", **params)
            members = sorted(r for r, t in history.reps.items() if t == team)
            cards = {r: await both(f"/v1/reps/{r}/scorecard", **params) for r in members}
            _check_scorecards(body, cards, history, team, period, day)
            rep = members[1]

            s = span(period, day, timezone)  # type: ignore[arg-type]
            folded_now = _window(history, WINDOW[period], s.end - timedelta(seconds=1))
            team_now = _sum([v for r, v in folded_now.items() if history.reps[r] == team])
            funnel = await both("/v1/reports/funnel", team_id=team, **params)
            stages = {st["stage"]: st for st in funnel["stages"]}
            for stage in ("dials", "connects", "conversations", "conversions"):
                assert stages[stage]["count"] == team_now[stage]
            assert stages["connects"]["rate"] == team_now["connect_rate"]
            lost = {(x["stage"], x["reason"]): x["count"] for x in funnel["losses"]}
            assert lost == _losses(calls, s.start, s.end)

            rep_funnel = await both("/v1/reports/funnel", rep_id=rep, **params)
            rep_lost = {(x["stage"], x["reason"]): x for x in rep_funnel["losses"]}
            mine = _losses([c for c in calls if c.rep_id == rep], s.start, s.end)
            assert {k: v["count"] for k, v in rep_lost.items() if v["count"]} == mine
            assert {k: v["team_count"] for k, v in rep_lost.items()} == {
                k: lost.get(k, 0) for k in rep_lost
            }
            assert [st["team_count"] for st in rep_funnel["stages"]] == [
                team_now[st] for st in ("dials", "connects", "conversations", "conversions")
            ]

            report = await both("/v1/reports/campaigns", team_id=team, **params)
            rows = {r["campaign_id"]: r for r in report["campaigns"]}
            for campaign in ("spring", "renewal", None):
                picked = [c for c in calls if c.campaign_id == campaign]
                folded = fold(
                    _events_of(picked),
                    s.end - timedelta(seconds=1),
                    timezones=history.timezones(),
                    rules=RULES,
                )
                want = _sum([w[WINDOW[period]] for w in folded.values()])  # type: ignore[index]
                got = rows.get(campaign or "none")
                if got is None:
                    assert want["dials"] == want["connects"] == 0
                    continue
                assert {k: got[k] for k in want} == want, campaign

        heat = await both(
            "/v1/reports/heatmap", team_id=team, weeks=5, date="2026-03-22", min_dials=6
        )
        zone = ZoneInfo(timezone)
        start, end = datetime.fromisoformat(heat["start"]), datetime.fromisoformat(heat["end"])
        assert start.astimezone(zone).date() == date(2026, 2, 16)
        want_cells = _cells(calls, start, end, zone)
        assert len(heat["cells"]) == 168
        for cell in heat["cells"]:
            counters = want_cells.get((cell["weekday"], cell["hour"]), dict.fromkeys(ADDITIVE, 0))
            values = kpi_values(**counters)
            for name in ("dials", "connects", "inbound_calls", "conversions"):
                assert cell[name] == counters[name], (cell, name)
            assert cell["connect_rate"] == values["connect_rate"]
            assert cell["conversion_rate"] == values["conversion_rate"]
            assert cell["sparse"] == (counters["dials"] < 6)
        spring = await both(
            "/v1/reports/heatmap", team_id=team, campaign_id="spring", weeks=5, date="2026-03-22"
        )
        spring_cells = _cells([c for c in calls if c.campaign_id == "spring"], start, end, zone)
        untagged = await both(
            "/v1/reports/heatmap", team_id=team, campaign_id="none", weeks=5, date="2026-03-22"
        )
        none_cells = _cells([c for c in calls if c.campaign_id is None], start, end, zone)
        assert sum(c["dials"] for c in untagged["cells"]) == sum(
            v["dials"] for v in none_cells.values()
        )
        assert {(c["weekday"], c["hour"]): c["dials"] for c in spring["cells"] if c["dials"]} == {
            k: v["dials"] for k, v in spring_cells.items() if v["dials"]
        }


async def test_a_rep_key_reads_its_own_scorecard_only(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    team, rep, other = f"t-{unique}", f"r-{unique}", f"o-{unique}"
    assert (
        await api.client.put(f"/v1/teams/{team}", json={"timezone": "Asia/Shanghai"})
    ).is_success
    for r in (rep, other):
        assert (await api.client.put(f"/v1/reps/{r}", json={"team_id": team})).is_success
    made = await api.client.post(f"/v1/reps/{rep}/keys")
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(api.app),
        base_url="http://api",
        headers={"Authorization": f"Bearer {key}"},
    ) as as_rep:
        assert (await as_rep.get("/v1/coaching/whoami")).json() == {"role": "rep", "rep_id": rep}
        own = await as_rep.get(f"/v1/reps/{rep}/scorecard", params={"period": "day"})
        assert own.status_code == 200, own.text
        assert own.json()["team_size"] == 2
        for path in (
            f"/v1/reps/{other}/scorecard",
            f"/v1/teams/{team}/scorecard",
            "/v1/reports/funnel",
            "/v1/reports/heatmap",
            "/v1/reports/daily",
            f"/v1/teams/{team}",
        ):
            denied = await as_rep.get(path)
            assert denied.status_code == 403, path
            assert denied.headers["content-type"].startswith("application/problem+json")
    as_viewer = await api.client.get(f"/v1/reps/{other}/scorecard")
    assert as_viewer.status_code == 200
    # bad input is a problem+json 4xx, never a 500
    for bad in (
        {"period": "year"},
        {"date": "2026-02-30"},
        {"date": "0001-01-01"},
        {"period": "month", "date": "9999-12-30"},
    ):
        got = await api.client.get(f"/v1/reps/{rep}/scorecard", params=bad)
        assert got.status_code == 422, bad
    assert (await api.client.get("/v1/reports/heatmap", params={"weeks": 0})).status_code == 422
    late: dict[str, str | int] = {"weeks": 53, "date": "9998-12-31"}
    assert (await api.client.get("/v1/reports/heatmap", params=late)).status_code == 200
    unknown = await api.client.get(f"/v1/reps/nobody-{unique}/scorecard")
    assert unknown.status_code == 404


async def test_digest_settings_and_preview(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    team = f"t-{unique}"
    assert (
        await api.client.put(f"/v1/teams/{team}", json={"timezone": "Asia/Shanghai"})
    ).is_success
    assert (await api.client.get(f"/v1/teams/{team}/digest")).json()["enabled"] is False
    sessions = api.app.state.callpulse_api.sessions
    created: list[int] = []
    try:
        settings = {"language": "en", "daily_at": "17:30", "emails": ["a@example.com"]}
        put = await api.client.put(f"/v1/teams/{team}/digest", json=settings)
        assert put.status_code == 200, put.text
        got = (await api.client.get(f"/v1/teams/{team}/digest")).json()
        assert got["daily_at"] == "17:30:00"
        assert got["enabled"] is True
        bad = await api.client.put(f"/v1/teams/{team}/digest", json={"emails": ["not-an-address"]})
        assert bad.status_code == 422
        # a competition of the team whose daily period ended within that week, and one of another
        async with sessions.begin() as session:
            for name, teams in (("Spring sprint", [team]), ("Elsewhere", [f"x-{unique}"])):
                created.append(await _competition_with_result(session, name, teams))
        preview = await api.client.get(
            f"/v1/teams/{team}/digest/preview", params={"kind": "weekly", "date": "2026-03-11"}
        )
    finally:  # other tests' APIs share the database: their schedulers would send these
        async with sessions.begin() as session:
            await session.execute(
                delete(DigestSettingsRow).where(DigestSettingsRow.team_id == team)
            )
            await session.execute(
                delete(CompetitionResultRow).where(CompetitionResultRow.competition_id.in_(created))
            )
            await session.execute(delete(CompetitionRow).where(CompetitionRow.id.in_(created)))
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["digest_id"] == f"{team}:weekly:2026-W11"
    assert body["title"] == f"Weekly digest · team {team} · 2026-W11"
    assert body["text"].startswith(body["title"])
    assert [(c["name"], c["winners"]) for c in body["competitions"]] == [
        ("Spring sprint", ["r-ada"])
    ]
    assert "Spring sprint (2026-03-10): r-ada" in body["text"]
    # nothing was sent or claimed by a preview
    async with api.app.state.callpulse_api.sessions() as session:
        claimed = await session.execute(
            text("SELECT count(*) FROM digest_runs WHERE team_id = :t"), {"t": team}
        )
        assert claimed.scalar_one() == 0


async def _competition_with_result(session: AsyncSession, name: str, teams: list[str]) -> int:
    """A valid one-off competition of `teams` with a frozen result for 2026-03-10 (Shanghai)."""
    definition = CompetitionIn(
        name=name,
        participants={"team_ids": teams},
        score=[{"kpi": "conversions", "weight": 1}],
        period={"kind": "once", "start": "2026-03-10T00:00", "end": "2026-03-11T00:00"},
        announce=False,
    )
    created = datetime(2026, 3, 1, tzinfo=UTC)
    row = CompetitionRow(
        name=name,
        timezone="Asia/Shanghai",
        definition=definition.model_dump(mode="json"),
        created_at=created,
        updated_at=created,
    )
    session.add(row)
    await session.flush()
    frozen = datetime(2026, 3, 10, 16, 1, tzinfo=UTC)
    session.add(
        CompetitionResultRow(
            competition_id=row.id,
            period_key="2026-03-10",
            period_start=datetime(2026, 3, 9, 16, tzinfo=UTC),
            period_end=datetime(2026, 3, 10, 16, tzinfo=UTC),
            frozen_at=frozen,
            revision=1,
            winners=["r-ada"],
            rows=[],
            corrections=[],
            updated_at=frozen,
        )
    )
    return row.id
