"""Shared helpers of the aggregator integration tests: topics, workers, produce, read back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from services.kit.kafka import ensure_topics
from tests.e2e.scenario import free_port, process, wait_http

PARTITIONS = 4
NAMES = ("events", "facts", "kpis", "calls", "alerts", "roster", "dead_letters")


class Deployment:
    """Unique topics and app id for one test, and how to start workers on them."""

    def __init__(self, bootstrap: str, tmp_path: Path, timezone: str) -> None:
        self.bootstrap, self.tmp_path = bootstrap, tmp_path
        self.run = f"t{uuid.uuid4().hex[:8]}"
        self.web = ""  # the running worker's Faust web root
        self.topic = {name: f"{self.run}.{name}" for name in NAMES}
        compacted = [self.topic["kpis"], self.topic["calls"], self.topic["roster"]]
        asyncio.run(
            ensure_topics(
                bootstrap, self.topic.values(), partitions=PARTITIONS, compacted=compacted
            )
        )
        self.env = {
            "CALLPULSE_KAFKA_BOOTSTRAP": bootstrap,
            "CALLPULSE_APP_ID": f"{self.run}-agg",
            "CALLPULSE_PARTITIONS": str(PARTITIONS),
            "CALLPULSE_TIMEZONE": timezone,
            "CALLPULSE_ROLLING_REFRESH_SECONDS": "2",
            "CALLPULSE_ALERT_EVALUATION_SECONDS": "1",
            **{f"CALLPULSE_{n.upper()}_TOPIC": t for n, t in self.topic.items()},
        }

    @contextmanager
    def worker(self, name: str) -> Iterator[Any]:
        """A real `callpulse aggregator` process, healthy before the block runs."""
        port = free_port()
        env = {
            **self.env,
            "CALLPULSE_WEB_PORT": str(port),
            "CALLPULSE_DATA_DIR": str(self.tmp_path / name),
        }
        args = ["services.cli", "aggregator", "--loglevel", "warning"]
        with process(args, env, self.tmp_path / f"{name}.log") as proc:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
            self.web = f"http://127.0.0.1:{port}"
            yield proc

    def produce(self, name: str, items: list[tuple[bytes, bytes]]) -> None:
        """Send (key, value) pairs to one of the test's topics, acks=all."""
        asyncio.run(_produce(self.bootstrap, self.topic[name], items))

    def read(self, name: str) -> list[tuple[bytes | None, bytes | None]]:
        """Every record of one of the test's topics, from the beginning to its end now."""
        return asyncio.run(_read_all(self.bootstrap, self.topic[name]))


async def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in items:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def read_records(
    bootstrap: str, topic: str, partitions: int = PARTITIONS
) -> list[ConsumerRecord[Any, Any]]:
    """Every record of a topic, from the beginning to its end now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        out: list[ConsumerRecord[Any, Any]] = []
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in await read_records(bootstrap, topic)]
