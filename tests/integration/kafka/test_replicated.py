"""A three-broker KRaft cluster, the events topic at replication factor 3 with
min.insync.replicas 2: one broker SIGKILLed while a PBX-like sender posts. Ingest keeps
answering 202, and every acknowledged event is in the topic afterwards."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.kit.kafka import TopicSpec, check_topics, create_topics
from tests.e2e.scenario import SECRET, free_port, process, wait_http
from tests.integration.ingest.test_broker_outage import Pbx
from tests.integration.kafka.cluster import LocalKafka, local_kafka

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]
PARTITIONS = 3


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalKafka]:
    with local_kafka(tmp_path / "kafka", brokers=3) as kafka:
        yield kafka


async def _event_ids(bootstrap: str, topic: str) -> list[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        ids: list[str] = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                    ids += [json.loads(r.value)["event_id"] for r in records if r.value]
        return ids
    finally:
        await consumer.stop()


def test_a_broker_killed_under_load_loses_no_acknowledged_event(
    cluster: LocalKafka, tmp_path: Path
) -> None:
    topic = f"replicated.{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(topic, PARTITIONS)
    asyncio.run(
        create_topics(cluster.bootstrap, [spec], replication_factor=3, min_insync_replicas=2)
    )
    assert asyncio.run(check_topics(cluster.bootstrap, [spec], replication_factor=3)) == []
    ingest_port = free_port()
    env = {
        "CALLPULSE_KAFKA_BOOTSTRAP": cluster.bootstrap,
        "CALLPULSE_EVENTS_TOPIC": topic,
        "CALLPULSE_PARTITIONS": str(PARTITIONS),
        "CALLPULSE_REPLICATION_FACTOR": "3",
        "CALLPULSE_CREATE_TOPICS": "false",
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        # A dead leader is fenced after the cluster's 3 s session timeout; acks=all then
        # completes on the new leader with the two in-sync replicas left.
        "CALLPULSE_PUBLISH_TIMEOUT_SECONDS": "20",
    }
    url = f"http://127.0.0.1:{ingest_port}"
    args = ["services.cli", "ingest", "--port", str(ingest_port)]
    with process(args, env, tmp_path / "ingest.log") as ingest:
        wait_http(f"{url}/readyz", proc=ingest)
        pbx = Pbx(url)
        pbx.start()
        time.sleep(3)
        before = len(pbx.statuses)
        cluster.script("kill", "2")
        time.sleep(10)
        pbx.stop.set()
        pbx.join(timeout=60)

    after = pbx.statuses[before:]
    assert before > 0
    assert len(after) > 0
    assert set(pbx.statuses) == {202}, f"answers other than 202: {pbx.statuses}"
    stored = asyncio.run(_event_ids(cluster.bootstrap, topic))
    assert set(pbx.accepted) <= set(stored)
