"""Ingest: single events with a durable ack (wrk) and NDJSON batches of 1,000 (httpx).

The ingest runs without CALLPULSE_WEBHOOK_SECRET (development mode accepts unsigned events):
Standard Webhooks signatures expire after 5 minutes and wrk cannot compute an HMAC per request.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from aiokafka import AIOKafkaProducer

from bench.scenarios.floor import floor_events
from bench.support import (
    KAFKA_NOTE,
    Context,
    Row,
    WrkResult,
    console,
    free_port,
    ratio,
    service,
    unique,
    wait_http,
    wrk,
)
from schemas.events import event_to_json
from services.kit.kafka import ensure_topics

BATCH = 1000
CONNECTIONS = 32
CONCURRENCY = 4  # batches in flight
ROUNDS = 3
"""Single events alternate between ingest and the bare app: the two-core machine's noise (the
broker, page cache flushes) then falls on both sides alike (one long run each swung 0.43-0.66)."""

# One unsigned call.started per request, with a fresh event_id and call_id each time.
SINGLE_EVENT_LUA = """
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local id = "wrk-" .. counter
  local body = '{"event_id":"' .. id .. '","type":"call.started","call_id":"c-' .. id ..
    '","rep_id":"rep-' .. (counter % 200) .. '","team_id":"team-1","direction":"outbound",' ..
    '"occurred_at":"2026-01-05T10:00:00+00:00","campaign_id":"renewals"}'
  return wrk.format(nil, "/v1/events", nil, body)
end
"""


def run(ctx: Context) -> list[Row]:
    """Single events against ingest and the bare app, then batches against a raw producer."""
    run_id = unique("ingest")
    topic = f"{run_id}.events"
    asyncio.run(ensure_topics(ctx.bootstrap, [topic], partitions=4))
    seconds = ctx.seconds(10, 3)
    count = ctx.count(100_000, 20_000)
    with console.status(f"generating {count:,} events"):
        bodies = [event_to_json(e) for e in floor_events(count, reps=2000, prefix=f"{run_id}-")]
    keys = [b"k%d" % i for i in range(len(bodies))]  # spread over partitions like call ids

    env = {
        "CALLPULSE_KAFKA_BOOTSTRAP": ctx.bootstrap,
        "CALLPULSE_EVENTS_TOPIC": topic,
        "CALLPULSE_WEBHOOK_SECRET": "",
        "CALLPULSE_ENV": "development",
    }
    port, bare_port = free_port(), free_port()
    bare_args = ["uvicorn", "bench.baseline_app:app", "--port", str(bare_port)]
    with (
        service("ingest", ["services.cli", "ingest", "--port", str(port)], env, ctx) as proc,
        service(
            "baseline-events", [*bare_args, "--log-level", "warning"], {}, ctx, bench_code=True
        ) as bare_proc,
    ):
        base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        wait_http(f"{base}/readyz", proc=proc)
        wait_http(f"{bare_base}/healthz", proc=bare_proc)
        rounds = [_single_round(n, base, bare_base, ctx, seconds) for n in range(ROUNDS)]
        with console.status(f"httpx: {count:,} events in NDJSON batches of {BATCH:,}"):
            batch_seconds = asyncio.run(_post_batches(base, bodies))
    batch_rate = count / batch_seconds
    console.log(f"ingest batches: {count:,} events in {batch_seconds:.2f} s = {batch_rate:,.0f}/s")

    with console.status(f"raw aiokafka producer: {count:,} events, acks=all"):
        raw_seconds = asyncio.run(_raw_produce(ctx.bootstrap, topic, keys, bodies))
    raw_rate = count / raw_seconds
    console.log(f"raw producer: {count:,} events in {raw_seconds:.2f} s = {raw_rate:,.0f}/s")

    # the round with the median ratio stands for the run; every round's ratio is in the notes
    ratios = [
        ratio(single.requests_per_second, bare.requests_per_second) or 0.0
        for single, bare in rounds
    ]
    median = sorted(range(ROUNDS), key=ratios.__getitem__)[ROUNDS // 2]
    single, bare = rounds[median]
    single_ratio = ratios[median]
    failures = sum(single.non_2xx + single.errors for single, _ in rounds)
    return [
        Row(
            "ingest, single events, durable ack",
            f"{single.requests_per_second:,.0f} req/s, p50 {single.p50_ms:.1f} ms, "
            f"p99 {single.p99_ms:.1f} ms",
            f"{bare.requests_per_second:,.0f} req/s, p50 {bare.p50_ms:.1f} ms, "
            f"p99 {bare.p99_ms:.1f} ms (bare FastAPI, parse + 202)",
            single_ratio,
            ">= 0.6 x bare endpoint",
            (single_ratio or 0) >= 0.6 and failures == 0,
            f"server 1 uvicorn worker (cpu0); wrk 1 thread, {CONNECTIONS} conns (cpu1); "
            + KAFKA_NOTE,
            notes=(
                f"{ROUNDS} rounds of {seconds:.0f} s, ingest then bare app in each; ratio "
                "per round "
                + ", ".join(f"{r:.2f}" for r in ratios)
                + f" (median shown); unsigned (no CALLPULSE_WEBHOOK_SECRET); {failures} "
                "non-2xx/errors in all rounds"
            ),
            raw={"rounds": [{"ingest": i.__dict__, "bare": b.__dict__} for i, b in rounds]},
        ),
        Row(
            "ingest, batches of 1,000",
            f"{batch_rate:,.0f} events/s",
            f"{raw_rate:,.0f} events/s (raw aiokafka producer, acks=all)",
            ratio(batch_rate, raw_rate),
            ">= 50,000 events/s",
            batch_rate >= 50_000,
            f"server 1 uvicorn worker (cpu0); httpx client, {CONCURRENCY} in flight (cpu1); "
            + KAFKA_NOTE,
            notes=f"{count:,} simulator events as NDJSON; raw producer runs in the client (cpu1)",
            raw={"events": count, "seconds": batch_seconds, "raw_seconds": raw_seconds},
        ),
    ]


async def _post_batches(base: str, bodies: list[bytes]) -> float:
    """Seconds to get every NDJSON batch accepted (202), `CONCURRENCY` in flight."""
    batches = [b"\n".join(bodies[i : i + BATCH]) for i in range(0, len(bodies), BATCH)]
    headers = {"content-type": "application/x-ndjson"}
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def post(body: bytes) -> None:
            async with slots:
                response = await client.post("/v1/events", content=body, headers=headers)
                if response.status_code != 202:
                    raise RuntimeError(f"ingest answered {response.status_code}: {response.text}")

        began = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for body in batches:
                group.create_task(post(body))
        return time.monotonic() - began


async def _raw_produce(bootstrap: str, topic: str, keys: list[bytes], bodies: list[bytes]) -> float:
    """Seconds for a plain producer (acks=all, idempotent) to get every event acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        began = time.monotonic()
        for start in range(0, len(bodies), BATCH):
            futures = [
                await producer.send(topic, body, key=key)
                for key, body in zip(
                    keys[start : start + BATCH], bodies[start : start + BATCH], strict=True
                )
            ]
            await asyncio.gather(*futures)
        return time.monotonic() - began
    finally:
        await producer.stop()


def _single_round(
    n: int, base: str, bare_base: str, ctx: Context, seconds: float
) -> tuple[WrkResult, WrkResult]:
    """wrk with one event per request against ingest, then against the bare app."""
    runs = []
    for name, url in (("ingest", base), ("bare app", bare_base)):
        with console.status(f"round {n + 1}/{ROUNDS}: wrk single events into {name}"):
            runs.append(
                wrk(
                    f"{url}/v1/events",
                    ctx,
                    seconds=seconds,
                    connections=CONNECTIONS,
                    script=SINGLE_EVENT_LUA,
                )
            )
        console.log(f"round {n + 1} {name} single: {runs[-1]}")
    return runs[0], runs[1]
