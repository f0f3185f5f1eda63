"""Ingest against the real broker: signed POST → 202 → records on the topic; broker down → 503."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.unit.ingest.support import SECRET, event, running, sign

pytestmark = pytest.mark.kafka

TopicFactory = Callable[[str], str]


async def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def read_records(bootstrap: str, topic: str, count: int) -> list[ConsumerRecord[Any, Any]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        for _ in range(60):  # a bound so a missing record fails instead of hanging
            batches = await consumer.getmany(timeout_ms=500)
            records += [record for batch in batches.values() for record in batch]
            if len(records) >= count:
                break
    finally:
        await consumer.stop()
    return records


def settings(bootstrap: str, topic: str, **extra: Any) -> IngestSettings:
    return IngestSettings(
        KAFKA_BOOTSTRAP=bootstrap, EVENTS_TOPIC=topic, WEBHOOK_SECRET=SECRET, **extra
    )


async def test_signed_batch_lands_on_the_topic_keyed_by_call_id(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = topic_factory("call-events")
    await create_topic(kafka_bootstrap, topic)
    batch = [
        event(event_id="e-1", call_id="call-A"),
        event(event_id="e-2", call_id="call-B", rep_id="rep-9"),
        event(
            type="call.ended",
            event_id="e-3",
            call_id="call-A",
            end_status="completed",
            talk_seconds=95,
            answered_at="2024-05-06T09:30:20+02:00",
        ),
        event(
            type="call.outcome",
            event_id="e-4",
            call_id="call-A",
            outcome="sale",
            amount="120.50",
            currency="EUR",
            occurred_at="2024-05-06T09:33:00+02:00",
        ),
    ]
    body = json.dumps(batch).encode()

    async with running(create_app(settings(kafka_bootstrap, topic))) as client:
        assert (await client.get("/readyz")).status_code == 200
        response = await client.post(
            "/v1/events", content=body, headers={"content-type": "application/json", **sign(body)}
        )
    assert response.status_code == 202
    assert response.json() == {"accepted": 4}

    records = await read_records(kafka_bootstrap, topic, 4)
    by_id = {json.loads(r.value)["event_id"]: r for r in records}
    assert sorted(by_id) == ["e-1", "e-2", "e-3", "e-4"]
    for sent in batch:
        record = by_id[sent["event_id"]]
        assert record.key == sent["call_id"].encode()
    started = json.loads(by_id["e-1"].value)
    assert started == {
        "type": "call.started",
        "event_id": "e-1",
        "call_id": "call-A",
        "occurred_at": "2024-05-06T09:30:00+02:00",
        "rep_id": "rep-7",
        "direction": "outbound",
        "from": "+4930123456",
        "to": "+4930654321",
    }
    ended = json.loads(by_id["e-3"].value)
    assert ended["type"] == "call.ended"
    assert ended["end_status"] == "completed"
    assert ended["talk_seconds"] == 95
    assert ended["answered_at"] == "2024-05-06T09:30:20+02:00"
    outcome = json.loads(by_id["e-4"].value)
    assert outcome["outcome"] == "sale"
    assert outcome["amount"] == "120.50"
    assert outcome["currency"] == "EUR"
    assert json.loads(by_id["e-2"].value)["rep_id"] == "rep-9"
    # One call's events share a partition, in the order they were sent.
    call_a = [r for r in records if r.key == b"call-A"]
    assert len({r.partition for r in call_a}) == 1
    assert [json.loads(r.value)["event_id"] for r in sorted(call_a, key=lambda r: r.offset)] == [
        "e-1",
        "e-3",
        "e-4",
    ]


async def test_a_provider_webhook_lands_on_the_topic(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = topic_factory("call-events")
    await create_topic(kafka_bootstrap, topic)
    cdr = {
        "variables": {
            "uuid": "9c5bd4c0-5fd1-4e0c-a2c4-3ad1b2c0e0aa",
            "direction": "outbound",
            "start_epoch": "1715000000",
            "answer_epoch": "1715000012",
            "end_epoch": "1715000200",
            "billsec": "188",
            "hangup_cause": "NORMAL_CLEARING",
            "callpulse_rep_id": "rep-3",
        }
    }
    app = create_app(settings(kafka_bootstrap, topic, FREESWITCH_BASIC_AUTH="fs:secret"))

    async with running(app) as client:
        response = await client.post("/v1/webhooks/freeswitch", json=cdr, auth=("fs", "secret"))
    assert response.status_code == 202

    [record] = await read_records(kafka_bootstrap, topic, 1)
    assert record.key == b"9c5bd4c0-5fd1-4e0c-a2c4-3ad1b2c0e0aa"
    value = json.loads(record.value)
    assert value["type"] == "call.ended"
    assert value["rep_id"] == "rep-3"
    assert value["talk_seconds"] == 188
    assert (
        value["event_id"] == "freeswitch:9c5bd4c0-5fd1-4e0c-a2c4-3ad1b2c0e0aa:call.ended:1715000200"
    )


async def test_unreachable_broker_is_503_with_retry_after(topic_factory: TopicFactory) -> None:
    body = json.dumps(event()).encode()
    app = create_app(
        settings("127.0.0.1:1", topic_factory("call-events"), PUBLISH_TIMEOUT_SECONDS=1)
    )

    async with running(app) as client:
        ready = await client.get("/readyz")
        response = await client.post(
            "/v1/events", content=body, headers={"content-type": "application/json", **sign(body)}
        )

    assert ready.status_code == 503
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"] == "application/problem+json"


async def keyed_send_partitions(bootstrap: str, topic: str, keys: list[bytes]) -> dict[bytes, int]:
    """Where a plain keyed producer.send() puts each key (the aggregator relies on it)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic, b"probe", key=key) for key in keys]
    finally:
        await producer.stop()
    return {key: metadata.partition for key, metadata in zip(keys, sent, strict=True)}


async def test_an_ndjson_batch_lands_in_the_keyed_partitions_in_order(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic, reference = topic_factory("call-events"), topic_factory("reference")
    await create_topic(kafka_bootstrap, topic, partitions=4)
    await create_topic(kafka_bootstrap, reference, partitions=4)
    batch = [event(event_id=f"e-{n}", call_id=f"call-{n % 40}") for n in range(300)]
    body = b"".join(json.dumps(item).encode() + b"\n" for item in batch)

    async with running(create_app(settings(kafka_bootstrap, topic))) as client:
        response = await client.post(
            "/v1/events",
            content=body,
            headers={"content-type": "application/x-ndjson", **sign(body)},
        )
    assert response.status_code == 202
    assert response.json() == {"accepted": 300}

    records = await read_records(kafka_bootstrap, topic, 300)
    assert sorted(json.loads(r.value)["event_id"] for r in records) == sorted(
        item["event_id"] for item in batch
    )
    keys = sorted({r.key for r in records})
    expected = await keyed_send_partitions(kafka_bootstrap, reference, keys)
    assert {(r.key, r.partition) for r in records} == set(expected.items())
    assert len(set(expected.values())) > 1  # the batch really spans partitions
    for key in keys:
        in_log = sorted((r for r in records if r.key == key), key=lambda r: r.offset)
        sent = [item["event_id"] for item in batch if item["call_id"].encode() == key]
        assert [json.loads(r.value)["event_id"] for r in in_log] == sent
