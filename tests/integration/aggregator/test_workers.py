"""Two Faust workers on a multi-partition topic; one is SIGKILLed mid-stream and restarted.

The final snapshot of every rep on the compacted kpis topic must equal the reference fold of
the de-duplicated log exactly, for every calendar window."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import CallEvent, event_to_json, parse_event
from services.aggregator.domain.reference import fold
from services.kit.kafka import ensure_topics
from tests.e2e.scenario import free_port, midday_timezone, process, wait_http

pytestmark = pytest.mark.timeout(300)
PARTITIONS = 4


def floor_log(seed: int, now: datetime, reps: int = 40, calls: int = 600) -> list[CallEvent]:
    """A seeded floor's events over the last 50 minutes (every lifecycle shape)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(calls):
        rep = f"r{rng.randrange(reps)}"
        call = f"c{i}"
        start = now - timedelta(seconds=rng.randrange(60, 50 * 60))
        inbound = rng.random() < 0.15
        base = {"call_id": call}
        out.append(
            {
                **base,
                "type": "call.started",
                "occurred_at": start,
                "direction": "inbound" if inbound else "outbound",
                **({} if inbound else {"rep_id": rep}),
            }
        )
        if rng.random() < 0.6:
            answered = start + timedelta(seconds=rng.randrange(3, 30))
            out.append({**base, "type": "call.answered", "occurred_at": answered, "rep_id": rep})
            end = answered + timedelta(seconds=rng.choice([20, 150, 299, 300, 420]))
            out.append(
                {
                    **base,
                    "type": "call.ended",
                    "occurred_at": end,
                    "rep_id": rep,
                    "end_status": "completed",
                }
            )
            if rng.random() < 0.3:
                out.append(
                    {
                        **base,
                        "type": "call.outcome",
                        "rep_id": rep,
                        "outcome": "sale",
                        "occurred_at": end + timedelta(seconds=20),
                        "amount": f"{rng.randrange(10, 900)}.{rng.randrange(100):02d}",
                    }
                )
                if rng.random() < 0.2:
                    out.append(
                        {
                            **base,
                            "type": "call.outcome",
                            "rep_id": rep,
                            "outcome": "not_interested",
                            "occurred_at": end + timedelta(seconds=40),
                        }
                    )
            if rng.random() < 0.2:
                out.append(
                    {
                        **base,
                        "type": "survey.completed",
                        "rep_id": rep,
                        "csat": rng.randrange(1, 6),
                        "occurred_at": end + timedelta(seconds=50),
                    }
                )
        else:
            out.append(
                {
                    **base,
                    "type": "call.ended",
                    "rep_id": rep,
                    "end_status": "no_answer",
                    "occurred_at": start + timedelta(seconds=25),
                    "direction": "inbound" if inbound else "outbound",
                }
            )
    return [parse_event({**e, "event_id": f"{e['call_id']}-{n}"}) for n, e in enumerate(out)]


async def _produce(bootstrap: str, topic: str, events: list[CallEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for event in events:
            await producer.send(topic, event_to_json(event), key=event.call_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _latest_snapshots(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        latest: dict[str, dict[str, Any]] = {}
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    if record.key is not None and record.value is not None:
                        latest[record.key.decode()] = json.loads(record.value)
        return latest
    finally:
        await consumer.stop()


def test_two_workers_with_a_sigkill_in_the_middle_give_the_reference_kpis(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = f"w{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    topic = {
        name: f"{run}.{name}" for name in ("events", "facts", "kpis", "calls", "alerts", "roster")
    }
    asyncio.run(
        ensure_topics(
            kafka_bootstrap,
            topic.values(),
            partitions=PARTITIONS,
            compacted=[topic["kpis"], topic["calls"], topic["roster"]],
        )
    )
    env = {
        "CALLPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CALLPULSE_APP_ID": f"{run}-agg",
        "CALLPULSE_PARTITIONS": str(PARTITIONS),
        "CALLPULSE_TIMEZONE": tz,
        "CALLPULSE_EVENTS_TOPIC": topic["events"],
        "CALLPULSE_FACTS_TOPIC": topic["facts"],
        "CALLPULSE_KPIS_TOPIC": topic["kpis"],
        "CALLPULSE_CALLS_TOPIC": topic["calls"],
        "CALLPULSE_ALERTS_TOPIC": topic["alerts"],
        "CALLPULSE_ROSTER_TOPIC": topic["roster"],
    }
    events = floor_log(seed=7, now=now)
    rng = random.Random(11)
    stream = events + rng.sample(events, len(events) // 5)  # 20 % duplicates
    rng.shuffle(stream)
    third = len(stream) // 3

    def worker(name: str) -> Any:
        port = free_port()
        worker_env = {
            **env,
            "CALLPULSE_WEB_PORT": str(port),
            "CALLPULSE_DATA_DIR": str(tmp_path / name),
        }
        return port, process(
            ["services.cli", "aggregator", "--loglevel", "warning"],
            worker_env,
            tmp_path / f"{name}.log",
        )

    port_a, ctx_a = worker("a")
    port_b, ctx_b = worker("b")
    with ctx_a as a, ctx_b as b:
        wait_http(f"http://127.0.0.1:{port_a}/healthz", proc=a)
        wait_http(f"http://127.0.0.1:{port_b}/healthz", proc=b)
        asyncio.run(_produce(kafka_bootstrap, topic["events"], stream[:third]))
        time.sleep(3)
        b.kill()  # SIGKILL mid-stream: its partitions move to worker a
        asyncio.run(_produce(kafka_bootstrap, topic["events"], stream[third : 2 * third]))
        port_c, ctx_c = worker("c")
        with ctx_c as c:
            wait_http(f"http://127.0.0.1:{port_c}/healthz", proc=c)
            asyncio.run(_produce(kafka_bootstrap, topic["events"], stream[2 * third :]))
            want = fold(events, datetime.now(UTC), default_timezone=tz)
            deadline = time.monotonic() + 120
            mismatch: dict[str, Any] = {}
            while time.monotonic() < deadline:
                got = asyncio.run(_latest_snapshots(kafka_bootstrap, topic["kpis"]))
                mismatch = {
                    (rep, window): (got.get(rep, {}).get("windows", {}).get(window), values)
                    for rep, windows in want.items()
                    for window, values in windows.items()
                    if window in ("today", "week", "month")
                    and not _equal(got.get(rep, {}).get("windows", {}).get(window), values)
                }
                if not mismatch:
                    break
                time.sleep(2)
            assert not mismatch, (
                f"{len(mismatch)} rep-windows differ, e.g. {next(iter(mismatch.items()))}"
            )


def _equal(got: dict[str, Any] | None, want: dict[str, Any]) -> bool:
    return got is not None and all(got.get(k) == v for k, v in want.items())
