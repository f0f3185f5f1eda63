"""A three-broker KRaft cluster, every topic at replication factor 3 with min.insync.replicas
2: one broker SIGKILLed while a PBX-like sender posts to ingest, with the aggregator and the API
running. Ingest keeps answering 202, every acknowledged event is in the topic afterwards, and
the KPIs equal the reference fold of the acknowledged events."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.e2e.scenario import (
    ADMIN_KEY,
    ROOT,
    SECRET,
    expected,
    free_port,
    midday_timezone,
    process,
    signed,
    wait_for_kpis,
    wait_http,
)
from tests.integration.kafka.cluster import LocalKafka, local_kafka

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]
PARTITIONS = 3


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalKafka]:
    with local_kafka(tmp_path / "kafka", brokers=3) as kafka:
        yield kafka


class Pbx(threading.Thread):
    """Posts one signed call.started at a time, as fast as answers come, until stopped."""

    def __init__(self, url: str, run: str) -> None:
        super().__init__(daemon=True)
        self.url, self.run_id, self.stop = url, run, threading.Event()
        self.accepted: list[dict[str, Any]] = []
        self.statuses: list[int] = []

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                event = {
                    "event_id": f"{self.run_id}-e{n}",
                    "type": "call.started",
                    "call_id": f"{self.run_id}-c{n}",
                    "rep_id": f"{self.run_id}-rep{n % 3}",
                    "direction": "outbound",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                body = json.dumps(event).encode()
                try:
                    status = client.post(
                        f"{self.url}/v1/events", content=body, headers=signed(body)
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses.append(status)
                if status == 202:
                    self.accepted.append(event)
                else:
                    time.sleep(0.2)


async def _event_ids(bootstrap: str, topic: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        ids: set[str] = set()
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                    ids |= {json.loads(r.value)["event_id"] for r in records if r.value}
        return ids
    finally:
        await consumer.stop()


def test_a_broker_killed_under_load_loses_no_acknowledged_event_nor_kpi(
    cluster: LocalKafka, postgres_url: str, tmp_path: Path
) -> None:
    run = f"rep3{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    env = {
        **{f"CALLPULSE_{n}_TOPIC": f"{run}.{n.lower()}" for n in ("EVENTS", "FACTS", "KPIS")},
        **{f"CALLPULSE_{n}_TOPIC": f"{run}.{n.lower()}" for n in ("CALLS", "ALERTS", "ROSTER")},
        "CALLPULSE_KAFKA_BOOTSTRAP": cluster.bootstrap,
        "CALLPULSE_PARTITIONS": str(PARTITIONS),
        "CALLPULSE_REPLICATION_FACTOR": "3",
        "CALLPULSE_MIN_INSYNC_REPLICAS": "2",
        "CALLPULSE_CREATE_TOPICS": "false",
        "CALLPULSE_DATABASE_URL": postgres_url,
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": tz,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_APP_ID": f"{run}-aggregator",
        "CALLPULSE_WEB_PORT": str(free_port()),
        "CALLPULSE_DATA_DIR": str(tmp_path / "faust"),
        "CALLPULSE_CONSUMER_GROUP_PREFIX": run,
        # A dead leader is fenced after the cluster's 3 s session timeout; acks=all then
        # completes on the new leader with the two in-sync replicas left.
        "CALLPULSE_PUBLISH_TIMEOUT_SECONDS": "20",
    }
    created = subprocess.run(
        [sys.executable, "-m", "services.cli", "topics", "create"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr

    ingest_port, api_port = free_port(), free_port()
    ingest_url, api_url = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
    with (
        process(["services.cli", "aggregator", "--loglevel", "warning"], env, tmp_path / "agg.log"),
        process(
            ["services.cli", "ingest", "--port", str(ingest_port)], env, tmp_path / "in.log"
        ) as ingest,
        process(["services.cli", "api", "--port", str(api_port)], env, tmp_path / "api.log") as api,
    ):
        wait_http(f"{ingest_url}/readyz", proc=ingest)
        wait_http(f"{api_url}/readyz", proc=api)
        pbx = Pbx(ingest_url, run)
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
        stored = asyncio.run(_event_ids(cluster.bootstrap, env["CALLPULSE_EVENTS_TOPIC"]))
        assert {e["event_id"] for e in pbx.accepted} <= stored
        wait_for_kpis(api_url, expected(pbx.accepted, datetime.now(UTC), tz), timeout=120)
