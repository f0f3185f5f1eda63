"""The HTTP API on the real PostgreSQL: roles, roster-only reps, problems, OpenAPI."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.kpis import HourlyPoint
from services.api.db.engine import create_engine, create_sessionmaker
from services.api.keys import create_key
from tests.integration.api.conftest import Api, ApiFactory
from tests.unit.api.snapshots import make_snapshot

TARGETS = {"targets": [{"kpi": "dials", "window": "today", "value": 50}]}


async def key(api: Api, role: str) -> dict[str, str]:
    engine = create_engine(api.settings.DATABASE_URL)
    try:
        new = await create_key(create_sessionmaker(engine), f"test-{role}", role)  # type: ignore[arg-type]
    finally:
        await engine.dispose()
    return {"Authorization": f"Bearer {new.key}"}


async def test_roles_on_postgres(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    viewer, supervisor = await key(api, "viewer"), await key(api, "supervisor")
    path = f"/v1/teams/t-{unique}/targets"

    wrong = await api.client.get("/v1/leaderboard", headers={"Authorization": "Bearer cp_wrong"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert wrong.headers["content-type"] == "application/problem+json"

    forbidden = await api.client.put(path, json=TARGETS, headers=viewer)
    assert forbidden.status_code == 403
    assert forbidden.json()["title"] == "Forbidden"
    assert (await api.client.put(path, json=TARGETS, headers=supervisor)).status_code == 200
    team = {"name": "x"}
    assert (
        await api.client.put(f"/v1/teams/t-{unique}", json=team, headers=supervisor)
    ).status_code == 403
    assert (await api.client.put(f"/v1/teams/t-{unique}", json=team)).status_code == 200


async def test_roster_reps_without_activity_read_as_zero(
    api_factory: ApiFactory, unique: str
) -> None:
    api = await api_factory()
    team_id, quiet, busy = f"t-{unique}", f"quiet-{unique}", f"busy-{unique}"
    put = api.client.put
    assert (
        await put(f"/v1/teams/{team_id}", json={"timezone": "Asia/Shanghai"})
    ).status_code == 200
    assert (await put(f"/v1/reps/{quiet}", json={"team_id": team_id})).status_code == 200
    assert (await put(f"/v1/teams/{team_id}/targets", json=TARGETS)).status_code == 200

    rep = (await api.client.get(f"/v1/reps/{quiet}/kpis", params={"window": "week"})).json()
    assert (rep["dials"], rep["connect_rate"], rep["as_of"]) == (0, None, None)
    assert rep["timezone"] == "Asia/Shanghai"
    assert rep["window_start"].endswith("+08:00")
    assert [(t["kpi"], t["target"], t["value"], t["met"]) for t in rep["targets"]] == [
        ("dials", 50, 0, False)
    ]

    readmodel = api.app.state.callpulse_api.readmodel
    snap = make_snapshot(busy, team_id, datetime.now(UTC), timezone="Asia/Shanghai", dials=9)
    profile = [HourlyPoint(hour=10, dials=9, connects=3, connect_rate=0.333333)]
    readmodel.apply(snap.model_copy(update={"hourly": profile}))
    wall = (await api.client.get(f"/v1/teams/{team_id}/kpis")).json()
    assert wall["dials"] == 9
    assert [(r["rep_id"], r["dials"]) for r in wall["reps"]] == sorted([(busy, 9), (quiet, 0)])
    assert wall["rep_count"] == 2
    # the hourly profiles are opt-in on the wallboard payload, always on a rep's own KPIs
    assert all(r["hourly"] == [] for r in wall["reps"])
    full = (await api.client.get(f"/v1/teams/{team_id}/kpis?include_hourly=true")).json()
    busy_row = next(r for r in full["reps"] if r["rep_id"] == busy)
    own = (await api.client.get(f"/v1/reps/{busy}/kpis")).json()
    assert busy_row["hourly"] == own["hourly"] == [p.model_dump() for p in profile]


async def test_unknown_subjects_are_404_problems(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    for path in (f"/v1/reps/nobody-{unique}/kpis", f"/v1/teams/nobody-{unique}/kpis"):
        response = await api.client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    invalid = await api.client.get(f"/v1/reps/x-{unique}/kpis", params={"window": "year"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["path"] == "query.window"
    bad_zone = await api.client.put(f"/v1/teams/t-{unique}", json={"timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 422


async def test_openapi_documents_models_and_problems(api_factory: ApiFactory) -> None:
    api = await api_factory()
    spec = (await api.client.get("/openapi.json")).json()
    rep = spec["paths"]["/v1/reps/{rep_id}/kpis"]["get"]
    assert rep["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RepKpisOut"
    )
    for status in ("401", "404", "422"):
        assert "application/problem+json" in rep["responses"][status]["content"]
    assert "lag_seconds" in spec["components"]["schemas"]["RepKpisOut"]["properties"]
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()


async def test_inputs_postgres_cannot_store_are_422_not_500(
    api_factory: ApiFactory, unique: str
) -> None:
    api = await api_factory()
    too_long = "x" * 201
    attempts = [
        api.client.get("/v1/reps/a%00b/kpis"),
        api.client.get("/v1/reports/daily", params={"team_id": "a\x00b"}),
        api.client.get("/v1/reports/daily", params={"date": "9999-12-31"}),
        api.client.put(f"/v1/reps/{too_long}", json={}),
        api.client.put(f"/v1/reps/r-{unique}", json={"team_id": too_long}),
        api.client.put(f"/v1/reps/r-{unique}", json={"name": "nul\x00"}),
        api.client.put(f"/v1/teams/t-{unique}/targets", json={"targets": [{"kpi": "dials"}]}),
        api.client.put(
            f"/v1/teams/t-{unique}/targets",
            content=b'{"targets": [{"kpi": "dials", "value": Infinity}]}',
            headers={"content-type": "application/json"},
        ),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 422, response.text
