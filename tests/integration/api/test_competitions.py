"""Competitions on the real PostgreSQL: live standings from stored call records (newer
versions replace, duplicates change nothing), freezing with winners, a correction by a late
call, the drill-down, validation and roles."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.competitions import CompetitionIn
from services.api.competitions import repository
from services.api.competitions.service import CompetitionService
from services.api.competitions.wiring import service_of
from services.api.consumers import calls_store
from services.api.keys import create_key
from tests.integration.api.conftest import ApiFactory
from tests.unit.competitions.records import record

ZONE = ZoneInfo("Asia/Shanghai")


def _rows(standings: dict[str, Any]) -> dict[str, tuple[int | None, float, bool]]:
    return {r["participant_id"]: (r["rank"], r["score"], r["qualified"]) for r in standings["rows"]}


async def test_competition_lifecycle(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    service = service_of(api.app)
    team = f"t-{unique}"
    alice, bob, carol = f"alice-{unique}", f"bob-{unique}", f"carol-{unique}"
    assert (
        await api.client.put(f"/v1/teams/{team}", json={"timezone": "Asia/Shanghai"})
    ).is_success
    # Fix "now" at 15:00 local on a day in the past, so the test controls when the day ends.
    day = datetime(2026, 3, 10, tzinfo=ZONE)
    now = day.replace(hour=15)
    service.clock = lambda: now
    body = {
        "name": "每日冲刺 Daily sprint",
        "participants": {"team_ids": [team]},
        "score": [{"kpi": "conversions", "weight": 10}, {"kpi": "conversations", "weight": 1}],
        "minimums": [{"kpi": "avg_talk_seconds", "at_least": 120}],
        "default_target": 25,
        "period": {"kind": "daily", "start": "2026-03-10T00:00:00"},
    }
    created = await api.client.post("/v1/competitions", json=body)
    assert created.status_code == 201, created.text
    competition = created.json()
    cid = competition["id"]
    try:
        assert competition["timezone"] == "Asia/Shanghai"

        store = calls_store(service.sessions, 300, after=service.on_stored)
        at = day.replace(hour=9)
        a1 = record(f"{unique}-a1", alice, team, at, talk=400, sale=Decimal("120"), version=3)
        a2 = record(f"{unique}-a2", alice, team, at + timedelta(hours=1), talk=200)
        b1 = record(f"{unique}-b1", bob, team, at, talk=350, sale=Decimal("50"))
        b2 = record(
            f"{unique}-b2", bob, team, at + timedelta(hours=2), talk=310, sale=Decimal("10")
        )
        c1 = record(f"{unique}-c1", carol, team, at, talk=30, sale=Decimal("10"))  # avg talk < 120
        await store([a1, a2, b1, b2, c1])

        standings = (await api.client.get(f"/v1/competitions/{cid}/standings")).json()
        assert standings["period"]["key"] == "2026-03-10"
        assert standings["period"]["start"] == "2026-03-10T00:00:00+08:00"
        # alice 10 + 1 = 11; bob 20 + 2 = 22; carol 10 but unqualified (avg talk 30 s)
        assert _rows(standings) == {
            bob: (1, 22.0, True),
            alice: (2, 11.0, True),
            carol: (None, 10.0, False),
        }
        assert standings["leaders"] == [bob]
        assert standings["participants"] == 3
        page = (await api.client.get(f"/v1/competitions/{cid}/standings?offset=1&limit=1")).json()
        assert [r["participant_id"] for r in page["rows"]] == [alice]

        # A second replica, which stored none of these records, catches up at its next refresh
        # (it asks the history which calls were stored since it last looked).
        replica = await api_factory()
        other = service_of(replica.app)
        other.clock, other.refresh_seconds = (lambda: now), 0
        await other.tick()
        await store([record(f"{unique}-b3", bob, team, at, talk=30)])
        await other.tick()
        seen = (await replica.client.get(f"/v1/competitions/{cid}/standings")).json()
        assert _rows(seen) == _rows(
            (await api.client.get(f"/v1/competitions/{cid}/standings")).json()
        )
        assert seen["rows"][0]["kpis"]["avg_talk_seconds"] == 230.0  # bob's third call counted
        assert "share a rank" in standings["tie_rule"]
        by_id = {r["participant_id"]: r for r in standings["rows"]}
        assert by_id[alice]["gap_to_leader"] == 11.0
        assert by_id[alice]["gap_to_target"] == 14.0
        assert by_id[alice]["kpis"]["avg_talk_seconds"] == 300.0

        # An older version and a duplicate change nothing; a newer one replaces the call's credit:
        # a2 becomes a sale: alice gains 10 (its talk is under the conversation minimum).
        await store([a1, record(f"{unique}-a1", alice, team, at, talk=400, version=1)])
        assert _rows((await api.client.get(f"/v1/competitions/{cid}/standings")).json())[alice] == (
            2,
            11.0,
            True,
        )
        a2_sale = record(
            f"{unique}-a2",
            alice,
            team,
            at + timedelta(hours=1),
            talk=200,
            sale=Decimal("5"),
            version=9,
        )
        await store([a2_sale, a2_sale])
        tied = (await api.client.get(f"/v1/competitions/{cid}/standings")).json()
        assert _rows(tied)[alice] == (2, 21.0, True)
        assert tied["leaders"] == [bob]

        # The drill-down lists the calls behind alice's score and what each added.
        calls = await api.client.get(
            f"/v1/reps/{alice}/calls", params={"competition_id": cid, "kpi": "conversions"}
        )
        assert calls.status_code == 200, calls.text
        drill = calls.json()
        assert {c["call_id"]: c["points"] for c in drill["calls"]} == {
            f"{unique}-a1": 11.0,
            f"{unique}-a2": 10.0,
        }
        assert drill["totals"]["conversions"] == 2
        assert drill["calls"][0]["talk_seconds"] == 400

        # The day ends: after the grace the period is frozen with its winner.
        now = day + timedelta(days=1, minutes=5)
        await service.tick()
        results = (await api.client.get(f"/v1/competitions/{cid}/results")).json()
        [result] = results
        assert result["period"]["key"] == "2026-03-10"
        assert result["winners"] == [bob]
        assert result["revision"] == 1
        assert result["corrections"] == []

        # A late sale of alice's in the closed day changes the winner: a correction, not silence,
        # even days later (beyond the 2 days in which ended periods are also re-checked).
        now = day + timedelta(days=6)
        late = record(
            f"{unique}-a3", alice, team, at + timedelta(hours=5), talk=300, sale=Decimal("1")
        )
        await store([late])
        # (the background rounds may meanwhile have frozen the days up to the moved clock)
        results = (await api.client.get(f"/v1/competitions/{cid}/results")).json()
        [result] = [r for r in results if r["period"]["key"] == "2026-03-10"]
        assert result["winners"] == [alice]
        assert result["revision"] == 2
        [correction] = result["corrections"]
        assert correction["previous_winners"] == [bob]
        assert correction["winners"] == [alice]
        assert correction["changed"] == {alice: [21.0, 32.0]}

        kinds = [
            a["kind"]
            for a in (await api.client.get(f"/v1/competitions/{cid}/announcements")).json()
        ]
        assert kinds[0] == "start"
        assert "winners" in kinds
        assert "correction" in kinds
    finally:
        # The database is shared with every other test: leave no competition running in it.
        assert (await api.client.delete(f"/v1/competitions/{cid}")).status_code == 204
    assert (await api.client.get(f"/v1/competitions/{cid}")).status_code == 404


async def test_validation_and_roles(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    bad = await api.client.post(
        "/v1/competitions",
        json={"name": "x", "participants": {}, "score": [], "period": {"kind": "once"}},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    unknown = await api.client.get("/v1/competitions/999999999/standings")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    backwards = await api.client.get(
        f"/v1/reps/r-{unique}/calls",
        params={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
    )
    assert backwards.status_code == 422
    viewer = await create_key(service_of(api.app).sessions, "wall", "viewer")
    headers = {"Authorization": f"Bearer {viewer.key}"}
    body = {
        "name": "x",
        "participants": {"rep_ids": ["a"]},
        "score": [{"kpi": "dials"}],
        "period": {"kind": "once", "start": "2026-03-01T09:00:00", "end": "2026-03-01T18:00:00"},
    }
    assert (
        await api.client.post("/v1/competitions", json=body, headers=headers)
    ).status_code == 403
    assert (await api.client.get("/v1/competitions", headers=headers)).status_code == 200
    # A rep's own key reads the competitions and the calls behind its own number only.
    mine = await create_key(service_of(api.app).sessions, "me", "rep", rep_id=f"r-{unique}")
    as_rep = {"Authorization": f"Bearer {mine.key}"}
    week = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-09T00:00:00Z"}
    own = await api.client.get(f"/v1/reps/r-{unique}/calls", params=week, headers=as_rep)
    assert own.status_code == 200, own.text
    other = await api.client.get(f"/v1/reps/x-{unique}/calls", params=week, headers=as_rep)
    assert other.status_code == 403
    assert (await api.client.get("/v1/competitions", headers=as_rep)).status_code == 200
    posted = await api.client.post("/v1/competitions", json=body, headers=as_rep)
    assert posted.status_code == 403


async def test_lead_changes_are_rate_limited_and_the_last_hour_announced(
    api_factory: ApiFactory, unique: str
) -> None:
    api = await api_factory()
    service = service_of(api.app)
    team = f"t-{unique}"
    ann, bo = f"ann-{unique}", f"bo-{unique}"
    start = datetime(2026, 4, 7, 9, tzinfo=ZONE)
    now = start + timedelta(minutes=30)
    service.clock = lambda: now
    body = {
        "name": "Morning race",
        "timezone": "Asia/Shanghai",
        "participants": {"team_ids": [team]},
        "score": [{"kpi": "conversions"}],
        "period": {"kind": "once", "start": "2026-04-07T09:00:00", "end": "2026-04-07T12:00:00"},
        "lead_change_minutes": 15,
    }
    cid = (await api.client.post("/v1/competitions", json=body)).json()["id"]
    store = calls_store(service.sessions, 300, after=service.on_stored)

    def sale(n: int, rep: str) -> Any:
        return record(f"{unique}-{n}", rep, team, start + timedelta(minutes=n), sale=Decimal(1))

    try:
        await store([sale(1, bo)])  # a first leader: no change to announce
        await store([sale(2, ann), sale(3, ann)])  # ann takes the lead: announced
        await store([sale(4, bo), sale(5, bo)])  # bo back in front within 15 min: not
        now = start + timedelta(minutes=50)
        await store([sale(6, ann), sale(7, ann)])  # a new 15-minute slot: announced
        now = start + timedelta(hours=2, minutes=10)  # the last hour
        await service.tick()
        now = start + timedelta(hours=3, minutes=5)
        await service.tick()
        got = (await api.client.get(f"/v1/competitions/{cid}/announcements")).json()
        # Oldest first; the start and the first lead change share a moment.
        assert sorted((a["kind"], a["leaders"]) for a in got) == [
            ("last_hour", [ann]),
            ("lead_change", [ann]),
            ("lead_change", [ann]),
            ("start", []),
            ("winners", [ann]),
        ]
        assert [a["kind"] for a in got][-2:] == ["last_hour", "winners"]
        by_kind = {a["kind"]: a for a in got}
        assert "takes the lead" in by_kind["lead_change"]["message_en"]
        assert "领先者变为" in by_kind["lead_change"]["message_zh"]
        assert "最后一小时" in by_kind["last_hour"]["message_zh"]
    finally:
        assert (await api.client.delete(f"/v1/competitions/{cid}")).status_code == 204


async def test_a_round_that_read_the_definitions_before_a_create_keeps_its_board(
    api_factory: ApiFactory, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background round lists the competitions while one is created: the new board must
    survive it (it was deleted, and its first lead changes went unannounced: a CI failure of
    the test above)."""
    api = await api_factory()
    shared = service_of(api.app)
    now = datetime(2026, 4, 7, 9, 30, tzinfo=ZONE)
    service = CompetitionService(shared.sessions, shared.announcer, clock=lambda: now)
    await service.tick()  # loaded, with no round running in the background
    read, go = asyncio.Event(), asyncio.Event()
    listed = repository.all_rows

    async def held_after_reading(session: Any) -> Any:
        rows = await listed(session)
        if not read.is_set():
            read.set()
            await go.wait()
        return rows

    monkeypatch.setattr(repository, "all_rows", held_after_reading)
    body = CompetitionIn.model_validate(
        {
            "name": "Race",
            "timezone": "Asia/Shanghai",
            "participants": {"team_ids": [f"t-{unique}"]},
            "score": [{"kpi": "conversions"}],
            "period": {"kind": "once", "start": "2026-04-07T09:00", "end": "2026-04-07T12:00"},
        }
    )
    round_ = asyncio.create_task(service.tick())
    await read.wait()  # the round has the list without the new competition
    create = asyncio.create_task(service.create(body))
    await asyncio.wait({create}, timeout=2)  # stored (and, unguarded, its board adopted)
    go.set()
    await round_
    competition = await create
    try:
        assert competition.id in service.boards
        assert service.boards[competition.id].standings is not None
    finally:
        await service.delete(competition.id)


async def test_team_against_team_and_editing(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    service = service_of(api.app)
    north, south = f"north-{unique}", f"south-{unique}"
    day = datetime(2026, 5, 4, tzinfo=ZONE)
    service.clock = lambda: day.replace(hour=17)
    body = {
        "name": "North v South",
        "timezone": "Asia/Shanghai",
        "participants": {"mode": "teams", "team_ids": [north, south]},
        "score": [{"kpi": "revenue", "weight": 0.5}],
        "targets": {north: 100},
        "period": {"kind": "weekly"},
    }
    cid = (await api.client.post("/v1/competitions", json=body)).json()["id"]
    try:
        store = calls_store(service.sessions, 300, after=service.on_stored)
        at = day.replace(hour=10)
        await store(
            [
                record(f"{unique}-n1", f"n1-{unique}", north, at, talk=60, sale=Decimal("120")),
                record(f"{unique}-n2", f"n2-{unique}", north, at, talk=60, sale=Decimal("30.5")),
                record(f"{unique}-s1", f"s1-{unique}", south, at, talk=60, sale=Decimal("200")),
                record(f"{unique}-x1", f"x1-{unique}", f"x-{unique}", at, sale=Decimal("999")),
            ]
        )
        got = (await api.client.get(f"/v1/competitions/{cid}/standings")).json()
        assert got["period"]["key"] == "2026-W19"
        assert _rows(got) == {south: (1, 100.0, True), north: (2, 75.25, True)}
        north_row = next(r for r in got["rows"] if r["participant_id"] == north)
        assert (north_row["target"], north_row["gap_to_target"]) == (100, 24.75)

        listed = (await api.client.get("/v1/competitions", params={"team_id": north})).json()
        assert [c["id"] for c in listed] == [cid]
        edited = await api.client.put(
            f"/v1/competitions/{cid}", json=body | {"score": [{"kpi": "conversions"}]}
        )
        assert edited.status_code == 200, edited.text
        got = (await api.client.get(f"/v1/competitions/{cid}/standings")).json()
        assert _rows(got) == {north: (1, 2.0, True), south: (2, 1.0, True)}
        missing = await api.client.put("/v1/competitions/999999999", json=body)
        assert missing.status_code == 404
    finally:
        assert (await api.client.delete(f"/v1/competitions/{cid}")).status_code == 204
