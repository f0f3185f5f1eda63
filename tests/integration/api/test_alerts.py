"""Alert endpoints on the real PostgreSQL: history, acknowledgement, channels, alert rules;
roles, and problems for what is unknown or invalid."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from schemas.alerts import Alert
from schemas.roster import AlertRule, AlertRules
from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker
from services.api.keys import create_key
from tests.integration.api.conftest import Api, ApiFactory
from tests.unit.api.alerts import make_alert, resolve

WHSEC = "whsec_" + base64.b64encode(b"integration-secret-0123456789ab").decode()
PROBLEM = "application/problem+json"


async def headers_for(api: Api, role: str) -> dict[str, str]:
    engine = create_engine(api.settings.DATABASE_URL)
    try:
        new = await create_key(create_sessionmaker(engine), f"test-{role}", role)  # type: ignore[arg-type]
    finally:
        await engine.dispose()
    return {"Authorization": f"Bearer {new.key}"}


async def record(api: Api, *alerts: Alert) -> None:
    await api.app.state.callpulse_api.alerts.record(list(alerts))


async def test_viewers_read_alerts_and_supervisors_ack_them(
    api_factory: ApiFactory, unique: str
) -> None:
    api = await api_factory()
    viewer, supervisor = await headers_for(api, "viewer"), await headers_for(api, "supervisor")
    team, rep = f"t-{unique}", f"r-{unique}"
    now = datetime.now(UTC)
    # Ids as the aggregator makes them: rule, rep, window start (with its offset), episode.
    older = make_alert(
        f"dials-pace:{rep}:2025-03-12T00:00:00+08:00:1",
        rep_id=rep,
        team_id=team,
        at=now - timedelta(minutes=10),
    )
    newer = make_alert(f"idle:{rep}:{unique}:1", rep_id=rep, team_id=team, at=now)
    await record(api, older, newer, resolve(older, at=now))

    listed = await api.client.get("/v1/alerts", params={"team_id": team}, headers=viewer)
    assert listed.status_code == 200
    body = listed.json()
    assert [(a["alert_id"], a["state"]) for a in body["alerts"]] == [
        (newer.alert_id, "firing"),
        (older.alert_id, "resolved"),
    ]
    assert body["alerts"][1]["message_zh"].startswith("已恢复")
    assert body["alerts"][0]["deliveries"] == []  # no channels configured
    firing = await api.client.get(
        "/v1/alerts", params={"state": "firing", "rep_id": rep}, headers=viewer
    )
    assert [a["alert_id"] for a in firing.json()["alerts"]] == [newer.alert_id]

    path = f"/v1/alerts/{quote(older.alert_id, safe='')}/ack"
    denied = await api.client.post(path, headers=viewer)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == PROBLEM
    acked = await api.client.post(path, headers=supervisor)
    assert acked.status_code == 200
    assert (acked.json()["alert_id"], acked.json()["acked_by"]) == (
        older.alert_id,
        "test-supervisor",
    )
    again = await api.client.post(path, headers=await headers_for(api, "admin"))
    assert again.status_code == 200
    assert (again.json()["acked_at"], again.json()["acked_by"]) == (
        acked.json()["acked_at"],
        "test-supervisor",
    )

    unknown = await api.client.post(f"/v1/alerts/nope-{unique}/ack", headers=supervisor)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    assert unknown.json()["status"] == 404


async def test_alert_list_problems(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    wrong = await api.client.get("/v1/alerts", headers={"Authorization": "Bearer cp_wrong"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == PROBLEM
    for params, path in (
        ({"state": "open"}, "query.state"),
        ({"limit": "0"}, "query.limit"),
        ({"team_id": "x" * 201}, "query.team_id"),
    ):
        response = await api.client.get("/v1/alerts", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["path"] == path
    assert (await api.client.post(f"/v1/alerts/{'x' * 600}/ack")).status_code == 422


async def test_channels_are_admin_only_and_never_show_secrets(
    api_factory: ApiFactory, unique: str
) -> None:
    api = await api_factory()
    supervisor = await headers_for(api, "supervisor")
    path = f"/v1/teams/t-{unique}/channels"
    channels = [
        {"type": "webhook", "url": "https://hooks.example/in", "secret": WHSEC},
        {
            "type": "dingtalk",
            "url": "https://oapi.dingtalk.com/robot/send?access_token=tok123",
            "secret": "SECdingtalk",
        },
        {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/tok456"},
        {"type": "alertmanager", "url": "http://am.example:9093"},
    ]
    assert (await api.client.get(path)).json() == {
        "team_id": f"t-{unique}",
        "configured": False,
        "channels": [],  # no service defaults configured here
    }
    forbidden = await api.client.put(path, json={"channels": channels}, headers=supervisor)
    assert forbidden.status_code == 403
    assert (await api.client.get(path, headers=supervisor)).status_code == 403

    put = await api.client.put(path, json={"channels": channels})
    assert put.status_code == 200
    got = await api.client.get(path)
    assert got.json() == put.json()
    assert got.json()["configured"] is True
    shown = [(c["type"], c["url"], c["has_secret"]) for c in got.json()["channels"]]
    assert shown == [
        ("webhook", "https://hooks.example/…", True),
        ("dingtalk", "https://oapi.dingtalk.com/…", True),
        ("slack", "https://hooks.slack.com/…", False),
        ("alertmanager", "http://am.example:9093", False),
    ]
    for secret in (WHSEC, "SECdingtalk", "tok123", "tok456"):
        assert secret not in got.text

    assert (await api.client.delete(path)).json()["configured"] is False


async def test_invalid_channels_are_422(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    path = f"/v1/teams/t-{unique}/channels"
    hook = {"type": "webhook", "url": "https://hooks.example/in", "secret": WHSEC}
    for channels in (
        [{"type": "webhook", "url": "https://hooks.example/in"}],  # unsigned
        [{**hook, "secret": "not-base64!"}],
        [{"type": "slack", "url": "https://hooks.slack.com/x", "secret": "s"}],
        [{"type": "email", "url": "https://x.example"}],
        [{"type": "wecom", "url": "file:///etc/passwd"}],
        [hook, hook],
        [{"type": "feishu", "url": "https://x.example"}] * 21,
    ):
        response = await api.client.put(path, json={"channels": channels})
        assert response.status_code == 422, channels
        assert response.headers["content-type"] == PROBLEM
        assert WHSEC not in response.text


async def test_alert_rules_by_role_stored_for_the_roster(
    api_factory: ApiFactory, unique: str
) -> None:
    api = await api_factory()
    viewer, supervisor = await headers_for(api, "viewer"), await headers_for(api, "supervisor")
    team, rep = f"t-{unique}", f"r-{unique}"
    rules = {
        "rules": [
            {"rule_id": "dials-pace", "kind": "pace", "kpi": "dials", "tolerance": 0.2},
            {"rule_id": "talk", "kind": "threshold", "kpi": "avg_talk_seconds", "value": 120},
        ]
    }
    team_path = f"/v1/teams/{team}/alert-rules"
    assert (await api.client.put(team_path, json=rules, headers=viewer)).status_code == 403
    put = await api.client.put(team_path, json=rules, headers=supervisor)
    assert put.status_code == 200
    assert put.json()["subject"] == "team"
    override = {"rules": [{"rule_id": "idle", "kind": "idle", "idle_minutes": 20}]}
    rep_put = await api.client.put(f"/v1/reps/{rep}/alert-rules", json=override, headers=supervisor)
    assert rep_put.status_code == 200

    engine = create_engine(api.settings.DATABASE_URL)
    try:
        async with create_sessionmaker(engine)() as session:
            stored = await repository.get_alert_rules(session, "team", team)
            records = await repository.roster_records(session)
    finally:
        await engine.dispose()
    assert stored == AlertRules(
        subject="team",
        subject_id=team,
        rules=[
            AlertRule(rule_id="dials-pace", kind="pace", kpi="dials", tolerance=0.2),
            AlertRule(rule_id="talk", kind="threshold", kpi="avg_talk_seconds", value=120),
        ],
    )
    keys = {record.key() for record in records}
    assert {f"alert-rules:team:{team}", f"alert-rules:rep:{rep}"} <= keys


async def test_invalid_alert_rules_are_422(api_factory: ApiFactory, unique: str) -> None:
    api = await api_factory()
    path = f"/v1/teams/t-{unique}/alert-rules"
    for rules in (
        [{"rule_id": "t", "kind": "threshold", "kpi": "dials"}],  # no value
        [{"rule_id": "a", "kind": "idle"}, {"rule_id": "a", "kind": "pace"}],
        [{"rule_id": "a b", "kind": "idle"}],
        [{"rule_id": "a", "kind": "loud"}],
        [{"rule_id": "a", "kind": "pace", "kpi": "mood"}],
        [{"rule_id": "a", "kind": "pace", "tolerance": 2}],
    ):
        response = await api.client.put(path, json={"rules": rules})
        assert response.status_code == 422, rules
        assert response.headers["content-type"] == PROBLEM


async def test_openapi_documents_the_alert_endpoints(api_factory: ApiFactory) -> None:
    api = await api_factory()
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert "get" in paths["/v1/alerts"]
    assert "post" in paths["/v1/alerts/{alert_id}/ack"]
    assert {"get", "put", "delete"} <= set(paths["/v1/teams/{team_id}/channels"])
    assert "put" in paths["/v1/teams/{team_id}/alert-rules"]
    assert "put" in paths["/v1/reps/{rep_id}/alert-rules"]
