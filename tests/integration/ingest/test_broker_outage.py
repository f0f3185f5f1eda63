"""The broker dies while a PBX keeps posting, then comes back: every event that got a 2xx is in
the topic, and no request waited past the publish bound (it got a 503 with Retry-After)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.kit.kafka import ensure_topics
from tests.e2e.scenario import ROOT, SECRET, free_port, process, signed, wait_http

pytestmark = pytest.mark.timeout(300)
PUBLISH_BOUND = 3.0
SLACK = 4.0  # HTTP and event-loop overhead on top of the publish bound


def _kafka(command: str, port: int, home: Path) -> None:
    env = {
        **os.environ,
        "CALLPULSE_KAFKA_PORT": str(port),
        "CALLPULSE_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CALLPULSE_KAFKA_DIR": str(home),
    }
    subprocess.run(
        [str(ROOT / "deploy/local/kafka.sh"), command],
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )


async def _topic_event_ids(bootstrap: str, topic: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        ids: set[str] = set()
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                ids |= {json.loads(r.value)["event_id"] for r in records if r.value}
        return ids
    finally:
        await consumer.stop()


class Pbx(threading.Thread):
    """Posts one signed event at a time, as fast as answers come, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.accepted: list[str] = []
        self.statuses: list[int] = []
        self.slowest = 0.0
        self.retry_after_missing = 0

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                event = {
                    "event_id": f"out-{n}",
                    "type": "call.started",
                    "call_id": f"c{n}",
                    "rep_id": "r1",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                body = json.dumps(event).encode()
                started = time.monotonic()
                try:
                    response = client.post(
                        f"{self.url}/v1/events", content=body, headers=signed(body)
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.statuses.append(status)
                if status == 202:
                    self.accepted.append(event["event_id"])
                elif status == 503 and "retry-after" not in response.headers:
                    self.retry_after_missing += 1
                if status != 202:
                    time.sleep(0.2)


def test_events_acknowledged_across_a_broker_outage_are_all_in_kafka(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "kafka"
    bootstrap = f"127.0.0.1:{port}"
    topic = f"outage.{uuid.uuid4().hex[:8]}"
    _kafka("start", port, home)
    try:
        asyncio.run(ensure_topics(bootstrap, [topic], partitions=1))
        ingest_port = free_port()
        env = {
            "CALLPULSE_KAFKA_BOOTSTRAP": bootstrap,
            "CALLPULSE_EVENTS_TOPIC": topic,
            "CALLPULSE_PARTITIONS": "1",  # ingest checks the topic's partitions at start
            "CALLPULSE_WEBHOOK_SECRET": SECRET,
            "CALLPULSE_PUBLISH_TIMEOUT_SECONDS": str(PUBLISH_BOUND),
        }
        url = f"http://127.0.0.1:{ingest_port}"
        args = ["services.cli", "ingest", "--port", str(ingest_port)]
        with process(args, env, tmp_path / "ingest.log") as ingest:
            wait_http(f"{url}/readyz", proc=ingest)
            pbx = Pbx(url)
            pbx.start()
            time.sleep(2)
            _kafka("stop", port, home)
            time.sleep(6)
            during = len(pbx.statuses)
            _kafka("start", port, home)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and pbx.statuses[-1:] != [202]:
                time.sleep(0.5)
            time.sleep(2)
            pbx.stop.set()
            pbx.join(timeout=30)
        statuses = set(pbx.statuses)
        assert 503 in statuses, "the outage should have been answered with 503"
        assert pbx.retry_after_missing == 0
        assert statuses <= {202, 503}, statuses
        assert pbx.statuses[-1] == 202, "publishing resumes once the broker is back"
        assert during > 0
        assert pbx.slowest < PUBLISH_BOUND + SLACK, f"a request hung for {pbx.slowest:.1f}s"
        in_kafka = asyncio.run(_topic_event_ids(bootstrap, topic))
        lost = [e for e in pbx.accepted if e not in in_kafka]
        assert not lost, f"{len(lost)} acknowledged events are missing from Kafka: {lost[:5]}"
    finally:
        _kafka("stop", port, home)
