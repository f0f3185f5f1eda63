"""End to end: ingest -> Kafka -> aggregator -> kpis -> API, at a steady 100, then 500 events/s.

A simulated floor is sent at the rate by the simulator's Sender; meanwhile, every 0.5 s, a probe
event (the first `call.started` of a fresh probe rep) is posted and that rep's `today` KPIs are
polled every 50 ms: latency = from just before the POST to the first GET that shows the dial.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.scenarios.floor import floor_events
from bench.support import (
    KAFKA_NOTE,
    Context,
    Row,
    console,
    free_port,
    percentile,
    ratio,
    service,
    unique,
    wait_http,
)
from schemas.events import CallEvent
from services.kit.kafka import ensure_topics
from services.simulator.sender import Sender, batched, send_all

RATES = (100.0, 500.0)  # a light reference rate, then the target's
BATCH = 25  # 20 requests/s
PROBE_EVERY = 0.5  # seconds between probes; each polls on its own
POLL_SECONDS = 0.05
PROBE_TIMEOUT = 15.0
ADMIN_KEY = "cp_bench_admin_key_0123456789abcdef"
NAMES = ("events", "facts", "kpis", "calls", "alerts", "roster", "dead_letters")


def run(ctx: Context) -> list[Row]:
    """Start ingest, one aggregator worker and the API on unique topics; send and probe."""
    run_id = unique("e2e")
    topics = {n: f"{run_id}.{n}" for n in NAMES}
    asyncio.run(
        ensure_topics(
            ctx.bootstrap,
            topics.values(),
            partitions=4,
            compacted=[topics["kpis"], topics["calls"], topics["roster"]],
        )
    )
    seconds = ctx.seconds(60, 8)  # 120 probes per rate: p99 is not just the slowest one
    events = floor_events(int(sum(RATES) * seconds), reps=500, prefix=f"{run_id}-", minutes_ago=30)
    common = {
        "CALLPULSE_KAFKA_BOOTSTRAP": ctx.bootstrap,
        **{f"CALLPULSE_{n.upper()}_TOPIC": t for n, t in topics.items()},
    }
    agg_port, ingest_port, api_port = free_port(), free_port(), free_port()
    agg_env = {
        **common,
        "CALLPULSE_APP_ID": f"{run_id}-agg",
        "CALLPULSE_WEB_PORT": str(agg_port),
        "CALLPULSE_DATA_DIR": str(ctx.workdir / "e2e-aggregator"),
    }
    ingest_env = {**common, "CALLPULSE_WEBHOOK_SECRET": "", "CALLPULSE_ENV": "development"}
    api_env = {
        **common,
        "CALLPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{ctx.workdir / 'e2e-api.db'}",
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_CONSUMER_GROUP_PREFIX": run_id,
    }
    agg_args = ["services.cli", "aggregator", "--loglevel", "warning"]
    ingest_args = ["services.cli", "ingest", "--port", str(ingest_port)]
    api_args = ["services.cli", "api", "--port", str(api_port)]
    # Three services on two cores: none pinned, so each may use what the others leave.
    with (
        service("e2e-aggregator", agg_args, agg_env, ctx, cpus=None) as agg,
        service("e2e-ingest", ingest_args, ingest_env, ctx, cpus=None) as ingest,
        service("e2e-api", api_args, api_env, ctx, cpus=None) as api,
    ):
        with console.status("starting ingest, aggregator and API"):
            wait_http(f"http://127.0.0.1:{agg_port}/readyz", proc=agg, timeout=90)
            wait_http(f"http://127.0.0.1:{ingest_port}/readyz", proc=ingest, timeout=90)
            wait_http(f"http://127.0.0.1:{api_port}/readyz", proc=api, timeout=90)
        results: dict[float, tuple[list[float], int, float]] = {}
        offset = 0
        agg_lag: dict[float, float] = {}
        stages: dict[float, list[Stages]] = {rate: [] for rate in RATES}
        for rate in RATES:  # the light rate first, so the heavy one's backlog cannot skew it
            before = _lag_totals(f"http://127.0.0.1:{agg_port}/metrics")
            chunk = events[offset : offset + int(rate * seconds)]
            offset += len(chunk)
            with console.status(f"sending {len(chunk):,} events at {rate:.0f}/s and probing"):
                results[rate] = asyncio.run(
                    _drive(
                        f"http://127.0.0.1:{ingest_port}",
                        f"http://127.0.0.1:{api_port}",
                        chunk,
                        rate,
                        f"{run_id}-r{rate:.0f}",
                        stages[rate],
                    )
                )
            after = _lag_totals(f"http://127.0.0.1:{agg_port}/metrics")
            snapshots = after[1] - before[1]
            agg_lag[rate] = (after[0] - before[0]) / snapshots if snapshots else float("nan")
            _log(rate, *results[rate])
            console.log(f"aggregator: mean {agg_lag[rate] * 1000:,.0f} ms from Kafka to snapshot")
            console.log(f"probes in parts at {rate:.0f}/s: {_parts(stages[rate])}")
    light, heavy = (_percentiles(*results[rate]) for rate in RATES)
    cores = "ingest + aggregator + api unpinned on 2 cores, shared with the client; " + KAFKA_NOTE
    return [
        Row(
            f"end to end at {RATES[1]:.0f} events/s",
            _fmt(heavy),
            f"{_fmt(light)} at {RATES[0]:.0f} events/s, same processes",
            ratio(heavy.p99, light.p99),
            "p99 <= 500 ms",
            heavy.p99 <= 0.5 and heavy.timeouts == 0,
            cores,
            notes=_notes(heavy, results[RATES[1]][2])
            + f"; the aggregator's own mean lag (event in Kafka -> snapshot sent) "
            f"{agg_lag[RATES[1]] * 1000:,.0f} ms vs {agg_lag[RATES[0]] * 1000:,.0f} ms at "
            f"{RATES[0]:.0f}/s; probes in parts at {RATES[1]:.0f}/s: "
            f"{_parts(stages[RATES[1]])}; ratio = p99 / p99 at the light rate",
            raw={
                str(rate): {
                    "latencies": r[0],
                    "timeouts": r[1],
                    "rate": r[2],
                    "stages": stages[rate],
                }
                for rate, r in results.items()
            },
        )
    ]


def _parts(stages: list[Stages]) -> str:
    """p50 / p99 of each part of the probes' latency (`Stages`), in ms."""
    if not stages:
        return "none seen"
    names = ("ingest ack", "POST to Kafka", "aggregator", "snapshot to GET")
    columns = zip(*stages, strict=True)
    return (
        ", ".join(
            f"{name} {percentile(list(c), 50) * 1000:,.0f}/{percentile(list(c), 99) * 1000:,.0f}"
            for name, c in zip(names, columns, strict=True)
        )
        + " ms (p50/p99)"
    )


def _lag_totals(url: str) -> tuple[float, float]:
    """(sum, count) of the aggregator's event-to-snapshot lag histogram."""
    values = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(url, timeout=5).text.splitlines():
        for part in values:
            if line.startswith(f"callpulse_aggregator_event_lag_seconds_{part} "):
                values[part] = float(line.split()[1])
    return values["sum"], values["count"]


@dataclass(frozen=True)
class Latency:
    """Percentiles (s) of one rate's probes; timeouts count as PROBE_TIMEOUT (a lower bound)."""

    p50: float
    p99: float
    probes: int
    timeouts: int


def _percentiles(latencies: list[float], timeouts: int, _rate: float) -> Latency:
    observed = latencies + [PROBE_TIMEOUT] * timeouts
    if not observed:
        raise RuntimeError("no probe was sent")
    return Latency(percentile(observed, 50), percentile(observed, 99), len(observed), timeouts)


def _fmt(lat: Latency) -> str:
    def ms(value: float) -> str:
        return (">= " if value >= PROBE_TIMEOUT else "") + f"{value * 1000:,.0f} ms"

    return f"p50 {ms(lat.p50)}, p99 {ms(lat.p99)}"


def _notes(lat: Latency, achieved: float) -> str:
    return (
        f"{lat.probes} probes (POST -> rep KPIs show the dial, polled every "
        f"{POLL_SECONDS * 1000:.0f} ms), {lat.timeouts} not visible within "
        f"{PROBE_TIMEOUT:.0f} s (counted as that); load achieved {achieved:,.0f} events/s "
        f"in batches of {BATCH}"
    )


def _log(rate: float, latencies: list[float], timeouts: int, achieved: float) -> None:
    lat = _percentiles(latencies, timeouts, achieved)
    console.log(
        f"e2e at {rate:.0f}/s: {_fmt(lat)}, {lat.probes} probes, {timeouts} not visible; "
        f"load sent at {achieved:,.0f} events/s"
    )


Stages = tuple[float, float, float, float]
"""One probe's latency in parts (s): ingest's answer to the POST; POST to the event's record
timestamp in Kafka; the aggregator, record timestamp to snapshot (`lag_seconds`); the
snapshot's `as_of` to the GET that showed it (kpis topic, API, the 50-ms polling). Wall clocks
of one machine. The second part comes out negative (-10 to -60 ms): ingest's records carry the
time their producer batch was opened, often before the probe's POST, so the aggregator's part
is that much too long."""


async def _drive(
    ingest: str, api: str, events: list[CallEvent], rate: float, run_id: str, parts: list[Stages]
) -> tuple[list[float], int, float]:
    """Send the load at `rate` while probing; returns latencies (s), timeouts, achieved rate;
    each seen probe's `Stages` go to `parts`."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        httpx.AsyncClient(base_url=ingest, timeout=30) as sender_client,
        httpx.AsyncClient(base_url=ingest, timeout=30) as probe_client,
        httpx.AsyncClient(base_url=api, timeout=30, headers=headers) as api_client,
    ):
        sender = Sender(sender_client, None)
        began = time.monotonic()
        load = asyncio.create_task(
            send_all(sender, batched(events, BATCH), rate=rate, concurrency=8)
        )

        async def probe(n: int) -> float | None:
            # A fresh rep per probe: it becomes visible with its first dial.
            rep_id = f"{run_id}-probe-{n}"
            body = {
                "event_id": f"{run_id}-probe-e{n}",
                "type": "call.started",
                "call_id": f"{run_id}-probe-c{n}",
                "rep_id": rep_id,
                "direction": "outbound",
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            posted, posted_at = time.monotonic(), time.time()
            response = await probe_client.post("/v1/events", json=body)
            if response.status_code != 202:
                raise RuntimeError(f"probe rejected: {response.status_code} {response.text}")
            acked = time.monotonic() - posted
            seen = await _visible(api_client, rep_id, posted)
            if seen is None:
                return None
            at, shown = seen
            as_of = datetime.fromisoformat(shown["as_of"]).timestamp()
            in_kafka = as_of - shown["lag_seconds"]  # the event's arrival in Kafka
            stages = (acked, in_kafka - posted_at, shown["lag_seconds"], posted_at + at - as_of)
            parts.append(stages)
            return at

        probes: list[asyncio.Task[float | None]] = []
        while not load.done():
            probes.append(asyncio.create_task(probe(len(probes))))
            await asyncio.sleep(PROBE_EVERY)
        report = await load
        rate = report.events / (time.monotonic() - began)
        results = await asyncio.gather(*probes)
    latencies = [r for r in results if r is not None]
    return latencies, len(results) - len(latencies), rate


async def _visible(
    client: httpx.AsyncClient, rep_id: str, since: float
) -> tuple[float, dict[str, Any]] | None:
    """Seconds after `since` (monotonic) at which the rep's today KPIs show its dial, and
    that response; None on timeout."""
    while time.monotonic() - since < PROBE_TIMEOUT:
        response = await client.get(f"/v1/reps/{rep_id}/kpis", params={"window": "today"})
        shown = response.json() if response.status_code == 200 else {}
        if (shown.get("dials") or 0) >= 1:
            return time.monotonic() - since, shown
        await asyncio.sleep(POLL_SECONDS)
    return None
