"""Aggregator: one Faust worker draining N pre-produced events, next to a raw aiokafka consumer.

Both read the same 4-partition topic. The worker's figure is N / (time from its readiness to the
moment its consumer group has committed the end offsets of the events topic *and* of the facts
topic it feeds itself, i.e. both stages are done). Next to it: a Faust worker whose agent does
nothing, on the same topic (Faust's own ceiling here). Memory: a second worker recovers the state
a month of a 10,000-rep floor leaves (bench/scenarios/month.py) and its RSS is read from /proc.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import profiling
from bench.scenarios import month
from bench.scenarios.floor import floor_events
from bench.support import (
    KAFKA_NOTE,
    Context,
    Row,
    console,
    free_port,
    produce,
    ratio,
    rss_mib,
    service,
    unique,
    wait_http,
)
from schemas.events import event_from_json, event_to_json
from services.kit.kafka import ensure_topics

PARTITIONS = 4
NAMES = ("events", "facts", "kpis", "calls", "alerts", "roster", "dead_letters")
REPS = 10_000
WORKER_ARGS = ["services.cli", "aggregator", "--loglevel", "warning"]


def run(ctx: Context) -> list[Row]:
    """Produce the floor, time the raw consumer, then time the worker and read its RSS."""
    # ~400 events/s measured: 50k events keep the run near two minutes and reach ~10k reps
    count = ctx.count(50_000, 20_000)
    run_id = unique("agg")
    topics = {name: f"{run_id}.{name}" for name in NAMES}
    asyncio.run(
        ensure_topics(
            ctx.bootstrap,
            topics.values(),
            partitions=PARTITIONS,
            compacted=[topics["kpis"], topics["calls"], topics["roster"]],
        )
    )
    with console.status(f"generating {count:,} events of a {REPS:,}-rep floor"):
        events = floor_events(count, reps=REPS, prefix=f"{run_id}-")
        reps = len({e.rep_id for e in events if e.rep_id})
    with console.status(f"producing {count:,} events to {topics['events']}"):
        asyncio.run(
            produce(
                ctx.bootstrap,
                topics["events"],
                ((e.call_id.encode(), event_to_json(e)) for e in events),
            )
        )
    with console.status("baseline: raw aiokafka consumer, json + pydantic decode"):
        raw_seconds = asyncio.run(_raw_consume(ctx.bootstrap, topics["events"], count))
    raw_rate = count / raw_seconds
    console.log(f"raw consumer: {count:,} events in {raw_seconds:.2f} s = {raw_rate:,.0f}/s")
    with console.status("baseline: a Faust worker whose agent does nothing"):
        noop_rate = _faust_noop(ctx, topics["events"], count, f"{run_id}-noop")
    console.log(f"faust no-op agent: {noop_rate:,.0f} events/s")

    port = free_port()
    env = _worker_env(ctx, f"{run_id}-agg", topics, port, "aggregator")
    with service("aggregator", WORKER_ARGS, env, ctx) as proc:
        launched = time.monotonic()
        with console.status("aggregator worker: starting"):
            ready = wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc, timeout=90)
        sampler = None
        if ctx.profile:
            profile_out = ctx.workdir / "aggregator.collapsed"
            sampler = profiling.start(proc.pid, profile_out, ctx.seconds(40, 20))
        with console.status(f"aggregator worker: draining {count:,} events") as status:
            done, processed = asyncio.run(
                _drain(
                    ctx.bootstrap,
                    f"{run_id}-agg",
                    [topics["events"], topics["facts"]],
                    f"http://127.0.0.1:{port}/metrics",
                    limit_seconds=ctx.seconds(300, 120),
                    on_progress=lambda text: status.update(f"aggregator worker: {text}"),
                )
            )
        if proc.poll() is not None:
            raise RuntimeError("the aggregator worker exited")
        if sampler is not None:
            sampler.wait()
            profiling.save(ctx.workdir / "aggregator.collapsed", "aggregator")
    committed_seconds = done - ready
    first, last = processed
    seconds = last - first
    rate = count / seconds
    console.log(
        f"faust worker: {count:,} events processed through both stages in {seconds:.2f} s "
        f"(first to last, like the no-op) = {rate:,.0f}/s; {committed_seconds:.2f} s from "
        f"ready to both stages committed = {count / committed_seconds:,.0f}/s "
        f"(start-up {ready - launched:.1f} s) over {reps:,} reps"
    )
    month_reps = ctx.count(REPS, 2_000)
    rss, month_calls, recovery = _month_rss(ctx, month_reps)
    r = ratio(rate, raw_rate)
    cores = f"worker 1 (taskset cpu0); bench client 1 (cpu1); {KAFKA_NOTE}"
    return [
        Row(
            "aggregator, 1 Faust worker (events/s)",
            f"{rate:,.0f} events/s",
            f"{raw_rate:,.0f} events/s (raw aiokafka consumer + json/pydantic decode); "
            f"Faust no-op agent {noop_rate:,.0f} events/s",
            r,
            ">= 0.7 x the Faust no-op agent",
            rate >= 0.7 * noop_rate,
            cores,
            notes=(
                f"{count:,} pre-produced events of a {reps:,}-rep floor, 4 partitions; timed "
                "like the no-op agent, from the first event processed to the last fact applied "
                "by stage 2 (the worker's /metrics read every 0.1 s); "
                f"{rate / noop_rate:.2f} x the Faust no-op agent (same settings and pinning); "
                f"{count / committed_seconds:,.0f}/s from /readyz to both stages committed "
                "(Faust's 2.8 s commit interval included)"
            ),
            raw={
                "events": count,
                "seconds": seconds,
                "committed_seconds": committed_seconds,
                "raw_seconds": raw_seconds,
                "faust_noop_rate": noop_rate,
            },
        ),
        Row(
            f"aggregator RSS, {month_reps:,} reps and a month of history",
            f"{rss:,.0f} MiB",
            "—",
            None,
            "<= 1 GiB",
            rss <= 1024,
            cores,
            notes=(
                f"tables recovered from changelogs holding {month_reps:,} reps x 30 days of "
                f"buckets and {month_calls:,} kept calls (6 h retention at 50 calls/rep/day); "
                f"VmRSS once every rep is decoded and published; recovery {recovery:.0f} s"
            ),
            raw={"rss_mib": rss, "reps": month_reps, "calls": month_calls},
        ),
    ]


def _worker_env(
    ctx: Context, app_id: str, topics: dict[str, str], port: int, data: str
) -> dict[str, str]:
    """The environment of a `callpulse aggregator` on this run's topics."""
    return {
        "CALLPULSE_KAFKA_BOOTSTRAP": ctx.bootstrap,
        "CALLPULSE_APP_ID": app_id,
        "CALLPULSE_PARTITIONS": str(PARTITIONS),
        "CALLPULSE_WEB_PORT": str(port),
        "CALLPULSE_DATA_DIR": str(ctx.workdir / data),
        **{f"CALLPULSE_{n.upper()}_TOPIC": t for n, t in topics.items()},
    }


def _faust_noop(ctx: Context, topic: str, count: int, app_id: str) -> float:
    """Events/s of a Faust worker that only counts (bench/faust_noop.py) on the same topic."""
    env = {
        "CALLPULSE_KAFKA_BOOTSTRAP": ctx.bootstrap,
        "CALLPULSE_BENCH_TOPIC": topic,
        "CALLPULSE_BENCH_COUNT": str(count),
        "CALLPULSE_BENCH_APP_ID": app_id,
        "CALLPULSE_DATA_DIR": str(ctx.workdir / "faust-noop"),
    }
    args = ["bench.faust_noop", "worker", "-l", "warn"]
    with service("faust-noop", args, env, ctx, bench_code=True) as proc:
        proc.wait(timeout=ctx.seconds(240, 120))
    for line in reversed((ctx.workdir / "faust-noop.log").read_text().splitlines()):
        if '{"events"' in line:  # Faust logs what the agent prints
            result = json.loads(line[line.index('{"events"') :])
            return float(result["events"] / result["seconds"])
    raise RuntimeError("the Faust no-op worker reported nothing")


def _month_rss(ctx: Context, reps: int) -> tuple[float, int, float]:
    """(RSS MiB, kept calls, recovery seconds) of a worker recovering a month of state."""
    run_id = unique("month")
    app_id = f"{run_id}-agg"
    topics = {name: f"{run_id}.{name}" for name in NAMES}
    changelogs = {t: f"{app_id}-{t}-changelog" for t in ("calls", "reps")}
    asyncio.run(
        ensure_topics(
            ctx.bootstrap,
            [*topics.values(), *changelogs.values()],
            partitions=PARTITIONS,
            compacted=[topics["kpis"], topics["calls"], topics["roster"], *changelogs.values()],
        )
    )
    now = datetime.now(UTC)
    calls = month.kept_calls(reps)
    with console.status(f"writing a month of state: {reps:,} reps, {calls:,} kept calls"):
        asyncio.run(produce(ctx.bootstrap, changelogs["reps"], month.rep_states(reps, now)))
        asyncio.run(
            produce(ctx.bootstrap, changelogs["calls"], month.call_states(calls, reps, now))
        )
    port = free_port()
    env = _worker_env(ctx, app_id, topics, port, "aggregator-month")
    with service("aggregator-month", WORKER_ARGS, env, ctx) as proc:
        launched = time.monotonic()
        with console.status("aggregator worker: recovering a month of state"):
            ready = wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc, timeout=900)
        with console.status("aggregator worker: decoding and publishing every rep"):
            _wait_reps(f"http://127.0.0.1:{port}/metrics", reps, timeout=300)
        time.sleep(1.0)
        rss = rss_mib(proc.pid)
    console.log(f"month of state: RSS {rss:,.0f} MiB, recovery {ready - launched:.0f} s")
    return rss, calls, ready - launched


def _wait_reps(url: str, reps: int, *, timeout: float) -> None:
    """Wait until the worker's reps gauge (set after each rolling refresh) reaches `reps`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in httpx.get(url, timeout=5).text.splitlines():
            if line.startswith("callpulse_aggregator_reps ") and float(line.split()[1]) >= reps:
                return
        time.sleep(1.0)
    raise RuntimeError(f"the worker did not hold {reps:,} reps within {timeout:.0f} s")


async def _raw_consume(bootstrap: str, topic: str, count: int) -> float:
    """Seconds for a plain consumer to read and decode (json + pydantic) the whole topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=2000
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        began = time.monotonic()
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for records in batch.values():
                for record in records:
                    assert record.value is not None
                    event_from_json(record.value)
                    seen += 1
        return time.monotonic() - began
    finally:
        await consumer.stop()


async def _drain(
    bootstrap: str,
    group: str,
    topics: list[str],
    metrics_url: str,
    *,
    limit_seconds: float,
    on_progress: Callable[[str], None],
) -> tuple[float, tuple[float, float]]:
    """(when `group` committed every end offset, (first, last) time the worker's counters of
    processed events and facts moved): the committed wait, with the worker's /metrics read
    every 0.1 s beside it."""
    seen: list[tuple[float, float, float]] = []
    stop = asyncio.Event()

    async def poll() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while not stop.is_set():
                text = (await client.get(metrics_url)).text
                seen.append((time.monotonic(), *_processed(text)))
                await asyncio.sleep(0.1)

    poller = asyncio.create_task(poll())
    try:
        done = await _wait_committed(
            bootstrap, group, topics, limit_seconds=limit_seconds, on_progress=on_progress
        )
        await asyncio.sleep(0.3)  # a last reading of the final counts
    finally:
        stop.set()
        await poller
    final = seen[-1][1:]
    first = next(t for t, events, _ in seen if events > 0)
    last = next(t for t, *counts in seen if tuple(counts) == final)
    return done, (first, last)


def _processed(metrics: str) -> tuple[float, float]:
    """Events (applied, duplicate or invalid) and facts (applied or duplicate) a worker's
    /metrics has counted."""
    events = facts = 0.0
    for line in metrics.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("callpulse_aggregator_events_total{") and "too_late" not in name:
            events += float(value)
        elif name.startswith("callpulse_aggregator_facts_total{"):
            facts += float(value)
    return events, facts


async def _wait_committed(
    bootstrap: str,
    group: str,
    topics: list[str],
    *,
    limit_seconds: float,
    on_progress: Callable[[str], None],
) -> float:
    """Monotonic time at which `group` has committed the end offset of every partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await probe.start()
    parts = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    deadline = time.monotonic() + limit_seconds
    try:
        while time.monotonic() < deadline:
            ends = await probe.end_offsets(parts)
            committed = await admin.list_consumer_group_offsets(group)
            behind = sum(
                ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in parts
            )
            on_progress(f"{behind:,} records behind")
            if behind <= 0 and all(ends[tp] > 0 for tp in parts[:PARTITIONS]):
                return time.monotonic()
            await asyncio.sleep(0.1)
    finally:
        await probe.stop()
        await admin.close()
    raise RuntimeError(f"consumer group {group} did not catch up within {limit_seconds:.0f} s")
