"""Keys scoped to one team, through HTTP on the real app (PostgreSQL, and the embedded mode on
SQLite): the key reads its own team and gets a 403 problem or a list filtered to its team for
any other; its SSE stream carries its team's snapshots, alerts and competitions only."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import delete

from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.db.engine import create_engine
from services.api.db.models import (
    CompetitionAnnouncementRow,
    CompetitionResultRow,
    CompetitionRow,
)
from services.standalone.main import create_app as create_embedded
from tests.integration.api.conftest import ApiFactory
from tests.integration.api.servers import serve
from tests.unit.api.alerts import make_alert
from tests.unit.api.snapshots import make_snapshot
from tests.unit.api.sse import frames

PROBLEM = "application/problem+json"
pytestmark = pytest.mark.timeout(120)
WEEK = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-09T00:00:00Z"}


@pytest.fixture
async def made(postgres_url: str) -> AsyncIterator[list[int]]:
    """Ids of the competitions a test creates: deleted at its end, passed or failed (another
    test's stream would otherwise be sent their standings)."""
    ids: list[int] = []
    yield ids
    engine = create_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            for model in (CompetitionResultRow, CompetitionAnnouncementRow):
                await connection.execute(delete(model).where(model.competition_id.in_(ids)))
            await connection.execute(delete(CompetitionRow).where(CompetitionRow.id.in_(ids)))
    finally:
        await engine.dispose()


def _denied(response: httpx.Response) -> None:
    assert response.status_code == 403, (response.request.url, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)


def _competition(name: str, participants: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "name": name,
        "timezone": "UTC",
        "participants": participants,
        "score": [{"kpi": "dials"}],
        "period": {
            "kind": "once",
            "start": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "end": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        },
        "announce": False,
    }


async def _roster(admin: httpx.AsyncClient, teams: dict[str, list[str]]) -> None:
    for team, reps in teams.items():
        assert (await admin.put(f"/v1/teams/{team}", json={"timezone": "UTC"})).is_success
        for rep in reps:
            assert (await admin.put(f"/v1/reps/{rep}", json={"team_id": team})).is_success


async def _team_key(admin: httpx.AsyncClient, team: str, role: str) -> dict[str, str]:
    made = await admin.post(f"/v1/teams/{team}/keys", json={"name": f"{role} {team}", "role": role})
    assert made.status_code == 201, made.text
    assert (made.json()["team_id"], made.json()["role"]) == (team, role)
    return {"Authorization": f"Bearer {made.json()['key']}"}


async def test_a_team_key_reads_its_team_only(
    api_factory: ApiFactory, unique: str, made: list[int]
) -> None:
    api = await api_factory()
    admin = api.client
    mine, theirs = f"a-{unique}", f"b-{unique}"
    a1, b1 = f"a1-{unique}", f"b1-{unique}"
    await _roster(admin, {mine: [a1], theirs: [b1]})
    readmodel = api.app.state.callpulse_api.readmodel
    now = datetime.now(UTC)
    readmodel.apply(make_snapshot(a1, mine, now, dials=3))
    readmodel.apply(make_snapshot(b1, theirs, now, dials=7))
    alerts = api.app.state.callpulse_api.alerts
    ours, other = (
        make_alert(f"x-{a1}", rep_id=a1, team_id=mine),
        make_alert(f"x-{b1}", rep_id=b1, team_id=theirs),
    )
    await alerts.record([ours, other])
    comps = {}
    kinds: dict[str, dict[str, Any]] = {
        "both": {"mode": "teams", "team_ids": [mine, theirs]},
        "mine": {"rep_ids": [a1]},
        "theirs": {"rep_ids": [b1]},
    }
    for name, participants in kinds.items():
        new = await admin.post("/v1/competitions", json=_competition(name, participants))
        assert new.status_code == 201, new.text
        comps[name] = new.json()["id"]
        made.append(comps[name])

    # admin keys are never team-bound; only an admin makes team keys
    refused = await admin.post(f"/v1/teams/{mine}/keys", json={"name": "x", "role": "admin"})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM)
    key = await _team_key(admin, mine, "supervisor")
    viewer = await _team_key(admin, mine, "viewer")
    _denied(await admin.post(f"/v1/teams/{mine}/keys", json={"name": "y"}, headers=viewer))

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(api.app), base_url="http://api", headers=key
    ) as client:
        get = client.get
        who = (await get("/v1/coaching/whoami")).json()
        assert who == {"role": "supervisor", "team_id": mine}
        # one team: its own reads; another team's (or its rep's) is a 403 problem
        for path in (
            "/v1/teams/{}",
            "/v1/teams/{}/kpis",
            "/v1/teams/{}/targets",
            "/v1/teams/{}/alert-rules",
            "/v1/teams/{}/scorecard",
            "/v1/teams/{}/digest",
            "/v1/teams/{}/digest/preview",
        ):
            own = await get(path.format(mine))
            assert own.status_code == 200, (path, own.text)
            _denied(await get(path.format(theirs)))
        for path in (
            "/v1/reps/{}/kpis",
            "/v1/reps/{}",
            "/v1/reps/{}/targets",
            "/v1/reps/{}/scorecard",
        ):
            assert (await get(path.format(a1))).status_code == 200, path
            _denied(await get(path.format(b1)))
        assert (await get(f"/v1/reps/{a1}/calls", params=WEEK)).status_code == 200
        _denied(await get(f"/v1/reps/{b1}/calls", params=WEEK))
        _denied(await get("/v1/reports/funnel", params={"rep_id": b1}))
        # lists spanning teams keep its team; asking for another team is a 403
        board = (await get("/v1/leaderboard", params={"metric": "dials"})).json()
        assert [r["rep_id"] for r in board["rows"]] == [a1]
        assert [t["team_id"] for t in (await get("/v1/teams")).json()["teams"]] == [mine]
        assert [r["rep_id"] for r in (await get("/v1/reps")).json()["reps"]] == [a1]
        listed = (await get("/v1/alerts")).json()["alerts"]
        assert [a["alert_id"] for a in listed] == [ours.alert_id]
        for path in (
            "/v1/leaderboard",
            "/v1/reps",
            "/v1/alerts",
            "/v1/stream",
            "/v1/reports/daily",
            "/v1/reports/hourly",
            "/v1/reports/funnel",
            "/v1/reports/campaigns",
            "/v1/reports/heatmap",
        ):
            _denied(await get(path, params={"team_id": theirs}))
            if path != "/v1/stream":
                assert (await get(path, params={"team_id": mine})).status_code == 200, path
        daily = (await get("/v1/reports/daily")).json()
        assert {r["team_id"] for r in daily["reps"]} <= {mine}
        # competitions: those its team or one of its reps takes part in
        seen = {c["id"] for c in (await get("/v1/competitions")).json()}
        assert {comps["both"], comps["mine"]} <= seen
        assert comps["theirs"] not in seen
        for part in ("", "/standings", "/results", "/announcements"):
            assert (await get(f"/v1/competitions/{comps['mine']}{part}")).status_code == 200
            _denied(await get(f"/v1/competitions/{comps['theirs']}{part}"))
        # acting: its own team's alerts, targets and digests only
        _denied(await client.post(f"/v1/alerts/{other.alert_id}/ack"))
        assert (await client.post(f"/v1/alerts/{ours.alert_id}/ack")).status_code == 200
        targets = {"targets": [{"kpi": "dials", "window": "today", "value": 50}]}
        _denied(await client.put(f"/v1/teams/{theirs}/targets", json=targets))
        _denied(await client.put(f"/v1/reps/{b1}/targets", json=targets))
        assert (await client.put(f"/v1/teams/{mine}/targets", json=targets)).is_success
        _denied(await client.put(f"/v1/teams/{theirs}/digest", json={"enabled": False}))
    # the wallboard's own reads with the viewer key: its team, and nothing of the other
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(api.app), base_url="http://api", headers=viewer
    ) as wall:
        assert (await wall.get("/")).status_code == 200
        assert (await wall.get(f"/v1/teams/{mine}/kpis")).json()["dials"] == 3
        wide = await wall.get("/v1/leaderboard", params={"metric": "dials", "limit": 5000})
        assert {r["team_id"] for r in wide.json()["rows"]} == {mine}
    # an unscoped key reads every team as before
    assert (await admin.get(f"/v1/teams/{theirs}/kpis")).status_code == 200


async def _events(url: str, headers: dict[str, str]) -> AsyncGenerator[tuple[str, Any]]:
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client,
        client.stream("GET", "/v1/stream") as response,
    ):
        assert response.status_code == 200
        async for kind, _, data in frames(response.aiter_lines()):
            if data is not None:
                yield kind, data


async def test_the_stream_of_a_team_key_carries_its_team_only(
    postgres_url: str, unique: str, made: list[int]
) -> None:
    admin_key = f"cp_admin_{unique}"
    settings = ApiSettings(
        DATABASE_URL=postgres_url, BOOTSTRAP_ADMIN_KEY=SecretStr(admin_key), ALERT_POLL_SECONDS=0.2
    )
    app = create_app(settings)
    mine, theirs = f"a-{unique}", f"b-{unique}"
    a1, b1 = f"a1-{unique}", f"b1-{unique}"
    async with (
        serve(app) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
        ) as admin,
    ):
        await _roster(admin, {mine: [a1], theirs: [b1]})
        readmodel = app.state.callpulse_api.readmodel
        now = datetime.now(UTC)
        readmodel.apply(make_snapshot(a1, mine, now, dials=1))
        readmodel.apply(make_snapshot(b1, theirs, now, dials=1))
        key = await _team_key(admin, mine, "viewer")
        stream = _events(url, key)
        first = await anext(stream)
        assert first[0] == "kpi"
        assert (first[1]["rep_id"], first[1]["team_id"]) == (a1, mine)
        # the other team's snapshot, alert and competition come first: none may arrive
        later = now + timedelta(seconds=1)
        readmodel.apply(make_snapshot(b1, theirs, later, dials=2))
        await app.state.callpulse_api.alerts.record(
            [make_alert(f"x-{b1}", rep_id=b1, team_id=theirs)]
        )
        for name, rep in (("theirs", b1), ("mine", a1)):
            body = _competition(f"{name} {unique}", {"rep_ids": [rep]})
            created = await admin.post("/v1/competitions", json=body)
            assert created.status_code == 201, created.text
            made.append(created.json()["id"])
        readmodel.apply(make_snapshot(a1, mine, later, dials=2))
        await app.state.callpulse_api.alerts.record(
            [make_alert(f"x-{a1}", rep_id=a1, team_id=mine)]
        )
        got: dict[str, list[Any]] = {"kpi": [], "alert": [], "competition": []}
        async for kind, data in stream:
            got[kind].append(data)
            if all(got.values()):  # what its team got after the other team's
                break
        await stream.aclose()
        assert {(k["rep_id"], k["team_id"]) for k in got["kpi"]} == {(a1, mine)}
        assert [a["alert_id"] for a in got["alert"]] == [f"x-{a1}"]
        assert {c["competition_id"] for c in got["competition"]} == {made[1]}


async def test_team_keys_in_the_embedded_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    monkeypatch.setenv("CALLPULSE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}")
    monkeypatch.setenv("CALLPULSE_BOOTSTRAP_ADMIN_KEY", f"cp_admin_{unique}")
    app = create_embedded(tmp_path / "data")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://emb") as client,
    ):
        client.headers["Authorization"] = f"Bearer cp_admin_{unique}"
        await _roster(client, {"a": ["a1"], "b": ["b1"]})
        key = await _team_key(client, "a", "viewer")
        assert (await client.get("/v1/teams/a/kpis", headers=key)).status_code == 200
        _denied(await client.get("/v1/teams/b/kpis", headers=key))
        _denied(await client.get("/v1/reps/b1/kpis", headers=key))
        teams = (await client.get("/v1/teams", headers=key)).json()["teams"]
        assert [t["team_id"] for t in teams] == ["a"]
        _denied(await client.get("/v1/reports/daily", params={"team_id": "b"}, headers=key))
