"""CSAT follow-up end to end in the distributed API: call records consumed from Kafka raise one
alert per low survey, with the call and the rep, delivered once to the team's webhook however
often the record arrives and with two replicas consuming."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas.calls import CallFact, CallRecord
from services.kit.kafka import ensure_topics
from tests.e2e.scenario import SECRET
from tests.integration.api.conftest import ApiFactory, eventually

Posts = list[dict[str, Any]]


@pytest.fixture
def receiver() -> Iterator[tuple[Posts, str]]:
    """A local webhook receiver keeping every JSON body posted to it."""
    posts: Posts = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield posts, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


def _record(call_id: str, rep: str, team: str, csat: int, at: datetime) -> CallRecord:
    survey = at + timedelta(minutes=5)
    return CallRecord(
        call_id=call_id,
        version=5,
        rep_id=rep,
        team_id=team,
        direction="outbound",
        started_at=at,
        answered_at=at,
        ended_at=at + timedelta(minutes=3),
        end_status="completed",
        talk_seconds=180,
        connected=True,
        csat=csat,
        last_event_at=survey,
        facts=[
            CallFact(kpi="csat_sum", at=survey, value=Decimal(csat)),
            CallFact(kpi="csat_responses", at=survey, value=Decimal(1)),
        ],
    )


async def test_a_low_survey_raises_one_follow_up_alert(
    api_factory: ApiFactory, kafka_bootstrap: str, unique: str, receiver: tuple[Posts, str]
) -> None:
    posts, url = receiver
    one = await api_factory(KAFKA_BOOTSTRAP=kafka_bootstrap, CSAT_ALERT_THRESHOLD=2)
    topic = one.settings.CALLS_TOPIC
    await ensure_topics(kafka_bootstrap, [topic], partitions=2, compacted=[topic])
    two = await api_factory(
        KAFKA_BOOTSTRAP=kafka_bootstrap,
        CSAT_ALERT_THRESHOLD=2,
        CALLS_TOPIC=topic,
        KPIS_TOPIC=one.settings.KPIS_TOPIC,
        ROSTER_TOPIC=one.settings.ROSTER_TOPIC,
        ALERTS_TOPIC=one.settings.ALERTS_TOPIC,
    )
    assert two.settings.CONSUMER_GROUP_PREFIX == one.settings.CONSUMER_GROUP_PREFIX
    team, rep = f"t-{unique}", f"r-{unique}"
    channels = [{"type": "webhook", "url": url, "secret": SECRET}]
    put = await one.client.put(f"/v1/teams/{team}/channels", json={"channels": channels})
    assert put.status_code == 200, put.text

    at = datetime.now(UTC) - timedelta(minutes=10)
    low, fine = (
        _record(f"low-{unique}", rep, team, 1, at),
        _record(f"ok-{unique}", rep, team, 4, at),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for record in (low, fine, low, low):
            await producer.send_and_wait(
                topic, key=record.call_id.encode(), value=record.model_dump_json().encode()
            )
    finally:
        await producer.stop()

    async def delivered() -> list[dict[str, Any]]:
        return [p for p in posts if p.get("rep_id") == rep]

    [alert] = await eventually(delivered)
    assert alert["alert_id"] == f"csat:low-{unique}"
    assert alert["rule"] == "csat-follow-up"
    assert alert["value"] == 1
    assert f"low-{unique}" in alert["message_en"]
    assert rep in alert["message_en"]
    assert f"low-{unique}" in alert["message_zh"]
    assert alert["at"].startswith((at + timedelta(minutes=5)).isoformat()[:16])

    listed = await one.client.get("/v1/alerts", params={"rep_id": rep})
    assert [a["alert_id"] for a in listed.json()["alerts"]] == [f"csat:low-{unique}"]

    # the good survey and the redeliveries raised nothing more, on either replica
    async def history() -> bool:
        scorecard = await two.client.get(f"/v1/reps/{rep}/scorecard", params={"period": "day"})
        lines = {x["kpi"]: x for x in scorecard.json()["lines"]}
        return lines["csat_responses"]["value"] == 2

    await eventually(history)
    assert len(await delivered()) == 1
