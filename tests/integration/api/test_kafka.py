"""The API against the real Kafka and PostgreSQL: snapshots in, roster out, calls to history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from schemas.calls import CallRecord
from schemas.roster import RosterRecord
from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker
from services.api.readmodel import AlertEvent
from services.kit.kafka import ensure_topics
from tests.integration.api.conftest import Api, ApiFactory, eventually
from tests.unit.api.alerts import make_alert, resolve
from tests.unit.api.snapshots import make_snapshot


async def produce(bootstrap: str, topic: str, items: list[tuple[str, BaseModel]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(
                topic, key=key.encode(), value=value.model_dump_json().encode()
            )
    finally:
        await producer.stop()


async def ready(api: Api) -> bool:
    return (await api.client.get("/readyz")).status_code == 200


async def test_snapshots_are_served_after_catch_up_and_live(
    api_factory: ApiFactory, kafka_bootstrap: str, unique: str
) -> None:
    now = datetime.now(UTC)
    rep, team = f"rep-{unique}", f"team-{unique}"
    api = await api_factory(KAFKA_BOOTSTRAP=kafka_bootstrap)
    topic = api.settings.KPIS_TOPIC
    await ensure_topics(kafka_bootstrap, [topic], partitions=2, compacted=[topic])
    old = make_snapshot(rep, team, now - timedelta(seconds=30), dials=3)
    new = make_snapshot(rep, team, now - timedelta(seconds=1), dials=12, connects=4)
    await produce(kafka_bootstrap, topic, [(rep, old), (rep, new)])
    await eventually(lambda: ready(api))

    async def served() -> httpx.Response | None:
        response = await api.client.get(f"/v1/reps/{rep}/kpis", params={"window": "today"})
        return response if response.status_code == 200 and response.json()["dials"] == 12 else None

    body = (await eventually(served)).json()
    assert body["rep_id"] == rep
    assert body["team_id"] == team
    assert body["connects"] == 4
    assert body["window"] == "today"
    assert datetime.fromisoformat(body["as_of"]) == new.as_of

    other = f"rep2-{unique}"
    await produce(kafka_bootstrap, topic, [(other, make_snapshot(other, team, now, dials=5))])

    async def team_total() -> dict[str, object] | None:
        response = await api.client.get(f"/v1/teams/{team}/kpis")
        return response.json() if response.json().get("dials") == 17 else None

    wall = await eventually(team_total)
    assert [r["rep_id"] for r in wall["reps"]] == sorted([rep, other])


async def test_roster_puts_publish_roster_records(
    api_factory: ApiFactory, kafka_bootstrap: str, unique: str
) -> None:
    api = await api_factory(KAFKA_BOOTSTRAP=kafka_bootstrap)
    team_id = f"team-{unique}"
    targets = {"targets": [{"kpi": "avg_talk_seconds", "window": "today", "value": 300}]}

    async def put_team() -> httpx.Response | None:
        # 503 until the publisher has connected; the change is stored either way.
        body = {"name": "North", "timezone": "Europe/Berlin"}
        response = await api.client.put(f"/v1/teams/{team_id}", json=body)
        return response if response.status_code == 200 else None

    await eventually(put_team)
    assert (await api.client.put(f"/v1/teams/{team_id}/targets", json=targets)).status_code == 200
    rules = {"rules": [{"rule_id": "idle", "kind": "idle", "idle_minutes": 20}]}
    put = await api.client.put(f"/v1/teams/{team_id}/alert-rules", json=rules)
    assert put.status_code == 200

    consumer = AIOKafkaConsumer(
        api.settings.ROSTER_TOPIC,
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        records: dict[str, RosterRecord] = {}

        async def read() -> bool:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    records[message.key.decode()] = RosterRecord.model_validate_json(message.value)
            return len(records) == 3

        await eventually(read)
    finally:
        await consumer.stop()
    team = records[f"team:{team_id}"].team
    assert team is not None
    assert (team.name, team.timezone) == ("North", "Europe/Berlin")
    published = records[f"targets:team:{team_id}"].targets
    assert published is not None
    assert [(t.kpi, t.value) for t in published.targets] == [("avg_talk_seconds", 300)]
    alert_rules = records[f"alert-rules:team:{team_id}"].alert_rules
    assert alert_rules is not None
    assert [(r.rule_id, r.kind, r.idle_minutes) for r in alert_rules.rules] == [
        ("idle", "idle", 20)
    ]


async def test_call_records_reach_history_idempotently(
    api_factory: ApiFactory, kafka_bootstrap: str, unique: str
) -> None:
    api = await api_factory(KAFKA_BOOTSTRAP=kafka_bootstrap)
    topic = api.settings.CALLS_TOPIC
    await ensure_topics(kafka_bootstrap, [topic], partitions=2, compacted=[topic])
    at = datetime.now(UTC)
    call_id = f"call-{unique}"

    def version(n: int, outcome: str | None) -> CallRecord:
        return CallRecord(call_id=call_id, version=n, rep_id="r", outcome=outcome, last_event_at=at)

    # Newer first, then older and a redelivery: history must keep version 2.
    items = [
        (call_id, version(2, "sale")),
        (call_id, version(1, None)),
        (call_id, version(2, "sale")),
    ]
    await produce(kafka_bootstrap, topic, items)  # type: ignore[arg-type]
    engine = create_engine(api.settings.DATABASE_URL)
    sessions = create_sessionmaker(engine)
    try:

        async def stored() -> CallRecord | None:
            async with sessions() as session:
                return await repository.get_call(session, call_id)

        record = await eventually(stored)
        assert (record.version, record.outcome) == (2, "sale")
    finally:
        await engine.dispose()


async def test_alert_transitions_are_stored_once_and_reach_subscribers(
    api_factory: ApiFactory, kafka_bootstrap: str, unique: str
) -> None:
    api = await api_factory(KAFKA_BOOTSTRAP=kafka_bootstrap)
    topic = api.settings.ALERTS_TOPIC
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    rep, team = f"rep-{unique}", f"team-{unique}"
    subscription = api.app.state.callpulse_api.readmodel.subscribe(team)
    firing = make_alert(f"a-{unique}", rep_id=rep, team_id=team)
    # At least once: the aggregator may publish the same transition again.
    await produce(kafka_bootstrap, topic, [(rep, firing), (rep, firing)])

    async with asyncio.timeout(60):
        event = await subscription.get()
    assert isinstance(event, AlertEvent)
    assert (event.alert, event.seq is not None) == (firing, True)

    resolved = resolve(firing)
    await produce(kafka_bootstrap, topic, [(rep, resolved), (rep, firing)])
    async with asyncio.timeout(60):
        event = await subscription.get()
    assert isinstance(event, AlertEvent)
    assert event.alert == resolved

    async def listed() -> list[dict[str, object]] | None:
        response = await api.client.get("/v1/alerts", params={"team_id": team})
        alerts: list[dict[str, object]] = response.json()["alerts"]
        return alerts if alerts and alerts[0]["state"] == "resolved" else None

    [stored] = await eventually(listed)
    assert stored["alert_id"] == firing.alert_id
    assert stored["resolved_at"] is not None
