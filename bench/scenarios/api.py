"""API: the wallboard payload of a 200-rep team (wrk) and `/metrics` with 10,000 reps.

The read model is fed the way production feeds it: RepSnapshot JSONs produced to a run-unique
kpis topic that a real `callpulse api` process consumes (SQLite for its small database).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime

import httpx
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from bench import profiling
from bench.support import (
    KAFKA_NOTE,
    Context,
    Row,
    console,
    free_port,
    produce,
    ratio,
    service,
    unique,
    wait_http,
    wrk,
)
from schemas.kpis import (
    ADDITIVE,
    WINDOWS,
    HourlyPoint,
    Kpis,
    RepSnapshot,
    TargetProgress,
    kpi_values,
)
from services.api.windows import bounds

TEAM_REPS = 200
FLOOR_REPS = 10_000
CONNECTIONS = 32
PACED_CONNECTIONS = 10
PACE_MS = 9  # per connection: ~10 connections x (9 ms + service time) ~ 1,000 req/s
ADMIN_KEY = "cp_bench_admin_key_0123456789abcdef"

PACED_LUA = f"""
delay = function()
  return {PACE_MS}
end
"""


def snapshot(rep_id: str, team_id: str, n: int, now: datetime) -> RepSnapshot:
    """A plausible mid-shift snapshot: every window filled, two targets, a 24-hour profile."""
    windows = {}
    for w in WINDOWS:
        start, end = bounds(w, now, "UTC")
        scale = {"15m": 1, "60m": 3, "hour": 2, "today": 12, "week": 40, "month": 150}[w]
        dials = scale * (5 + n % 7)
        connects = dials // 4
        totals = dict.fromkeys(ADDITIVE, 0) | {
            "dials": dials,
            "inbound_calls": scale,
            "connects": connects + scale,
            "talk_seconds": float(connects * 170),
            "conversations": connects // 3,
            "conversions": connects // 8,
            "revenue": float(connects // 8 * 120),
            "csat_sum": 4 * scale,
            "csat_responses": scale,
        }  # a counter declared later stays 0
        values = kpi_values(**totals)
        windows[w] = Kpis(window=w, window_start=start, window_end=end, **values)
    today = windows["today"]
    targets = [
        TargetProgress(
            kpi="dials",
            window="today",
            target=50,
            value=today.dials,
            progress=today.dials / 50,
            met=today.dials >= 50,
            expected=25,
        ),
        TargetProgress(
            kpi="conversion_rate",
            window="today",
            target=0.1,
            value=today.conversion_rate,
            progress=(today.conversion_rate or 0) / 0.1,
            met=(today.conversion_rate or 0) >= 0.1,
        ),
    ]
    hourly = [
        HourlyPoint(
            hour=h,
            dials=10 + h,
            connects=3 + h // 3,
            connect_rate=round((3 + h // 3) / (10 + h), 6),
        )
        for h in range(24)
    ]
    return RepSnapshot(
        rep_id=rep_id,
        team_id=team_id,
        rep_name=f"Rep {n}",
        timezone="UTC",
        status=("idle", "on_call", "wrap_up", "ringing")[n % 4],
        status_since=now,
        as_of=now,
        lag_seconds=0.2,
        last_event_at=now,
        windows=windows,
        targets=targets,
        hourly=hourly,
    )


def run(ctx: Context) -> list[Row]:
    """Wallboard (max throughput and paced ~1,000 req/s) vs a precomputed payload; /metrics."""
    run_id = unique("api")
    topics = {n: f"{run_id}.{n}" for n in ("kpis", "alerts", "calls", "roster")}
    seconds = ctx.seconds(15, 5)
    team = f"{run_id}-wallboard"
    now = datetime.now(UTC)
    env = {
        "CALLPULSE_KAFKA_BOOTSTRAP": ctx.bootstrap,
        "CALLPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{ctx.workdir / 'api.db'}",
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_CONSUMER_GROUP_PREFIX": run_id,
        "CALLPULSE_CREATE_TOPICS": "true",  # the run's own topics: the API only checks them
        **{f"CALLPULSE_{n.upper()}_TOPIC": t for n, t in topics.items()},
    }
    auth = f"Authorization: Bearer {ADMIN_KEY}"
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    path = f"/v1/teams/{team}/kpis?window=today"
    with service("api", ["services.cli", "api", "--port", str(port)], env, ctx) as proc:
        wait_http(f"{base}/readyz", proc=proc, timeout=90)
        with console.status(f"feeding {TEAM_REPS} rep snapshots through {topics['kpis']}"):
            snaps = [snapshot(f"{team}-rep-{i:03d}", team, i, now) for i in range(TEAM_REPS)]
            _feed(ctx, topics["kpis"], snaps)
            payload = _wait_team(f"{base}{path}", headers, TEAM_REPS)
        console.log(f"wallboard payload: {len(payload):,} bytes")
        sampler = None
        if ctx.profile:
            collapsed = ctx.workdir / "api.collapsed"
            sampler = profiling.start(proc.pid, collapsed, max(1.0, seconds - 1))
        with console.status(f"wrk: wallboard, max throughput, {seconds:.0f} s"):
            board = wrk(
                f"{base}{path}", ctx, seconds=seconds, connections=CONNECTIONS, headers=[auth]
            )
        console.log(f"wallboard max: {board}")
        if sampler is not None:
            sampler.wait()
            profiling.save(collapsed, "api-wallboard")
        with console.status(f"wrk: wallboard paced to ~1,000 req/s, {seconds:.0f} s"):
            paced = wrk(
                f"{base}{path}",
                ctx,
                seconds=seconds,
                connections=PACED_CONNECTIONS,
                script=PACED_LUA,
                headers=[auth],
            )
        console.log(f"wallboard paced: {paced}")

        with console.status(f"feeding {FLOOR_REPS:,} more reps for /metrics"):
            floor = [
                snapshot(f"{run_id}-rep-{i:05d}", f"{run_id}-team-{i // 200:02d}", i, now)
                for i in range(FLOOR_REPS - TEAM_REPS)
            ]
            _feed(ctx, topics["kpis"], floor)
            _wait_team(f"{base}/v1/teams/{run_id}-team-48/kpis?window=today", headers, 200)
        sampler = None
        if ctx.profile:
            metrics_stacks = ctx.workdir / "api-metrics.collapsed"
            sampler = profiling.start(proc.pid, metrics_stacks, 8)
        with console.status("timing GET /metrics"):
            metric_ms, body = _time_gets(f"{base}/metrics", ctx.count(20, 10))
        if sampler is not None:
            sampler.wait()
            profiling.save(metrics_stacks, "api-metrics")
        samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        console.log(f"/metrics: median {statistics.median(metric_ms):.0f} ms, {samples:,} samples")
    plain_ms = _plain_gauges_ms(samples, ctx.count(20, 5))

    payload_file = ctx.workdir / "wallboard.json"
    payload_file.write_bytes(payload)
    port = free_port()
    args = ["uvicorn", "bench.baseline_app:app", "--port", str(port), "--log-level", "warning"]
    baseline_env = {"BENCH_PAYLOAD_FILE": str(payload_file)}
    with service("baseline-wallboard", args, baseline_env, ctx, bench_code=True) as p:
        bare_base = f"http://127.0.0.1:{port}"
        wait_http(f"{bare_base}/healthz", proc=p)
        with console.status(f"wrk: precomputed payload, {seconds:.0f} s"):
            bare = wrk(f"{bare_base}{path}", ctx, seconds=seconds, connections=CONNECTIONS)
        console.log(f"precomputed: {bare}")

    cores = f"api 1 (cpu0); wrk 1 thread (cpu1); {KAFKA_NOTE}"
    median = statistics.median(metric_ms)
    return [
        Row(
            "API wallboard, 200 reps",
            f"{board.requests_per_second:,.0f} req/s, p99 {board.p99_ms:.1f} ms "
            f"(max, {CONNECTIONS} conns); p99 {paced.p99_ms:.1f} ms at "
            f"{paced.requests_per_second:,.0f} req/s",
            f"{bare.requests_per_second:,.0f} req/s, p99 {bare.p99_ms:.1f} ms "
            "(precomputed payload, same bytes)",
            ratio(board.requests_per_second, bare.requests_per_second),
            "p99 <= 10 ms at 1,000 req/s",
            paced.p99_ms <= 10 and paced.requests_per_second >= 900,
            cores,
            notes=f"payload {len(payload):,} bytes; paced run: wrk delay() {PACE_MS} ms, "
            f"{PACED_CONNECTIONS} conns",
            raw={"max": board.__dict__, "paced": paced.__dict__, "bare": bare.__dict__},
        ),
        Row(
            f"API /metrics, {FLOOR_REPS:,} reps",
            f"{median:.0f} ms median, {max(metric_ms):.0f} ms max",
            f"{statistics.median(plain_ms):.0f} ms (prometheus_client, {samples:,} plain gauges, "
            "in-process)",
            ratio(median, statistics.median(plain_ms)),
            "<= 250 ms",
            median <= 250,
            "api 1 (cpu0); sequential httpx GETs (cpu1)",
            notes=f"{samples:,} samples, {len(body):,} bytes; default REP_METRICS_CAP (500); "
            "ratio is time, lower is better",
            raw={"ms": metric_ms, "plain_ms": plain_ms, "samples": samples},
        ),
    ]


def _feed(ctx: Context, topic: str, snaps: list[RepSnapshot]) -> None:
    items = ((s.rep_id.encode(), s.model_dump_json().encode()) for s in snaps)
    asyncio.run(produce(ctx.bootstrap, topic, items))


def _wait_team(url: str, headers: dict[str, str], reps: int, timeout: float = 60) -> bytes:
    """The team payload once it lists `reps` reps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(url, headers=headers, timeout=10)
        if response.status_code == 200 and len(response.json().get("reps", [])) >= reps:
            return response.content
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not list {reps} reps within {timeout:.0f} s")


def _time_gets(url: str, count: int) -> tuple[list[float], str]:
    """Milliseconds of `count` sequential GETs, and the last body."""
    out: list[float] = []
    body = ""
    with httpx.Client(timeout=30) as client:
        client.get(url)  # warm up
        for _ in range(count):
            began = time.perf_counter()
            response = client.get(url)
            out.append((time.perf_counter() - began) * 1000)
            body = response.text
    return out, body


def _plain_gauges_ms(samples: int, count: int) -> list[float]:
    """Milliseconds for prometheus_client to render `samples` plain labelled gauge samples."""
    registry = CollectorRegistry()
    gauge = Gauge("bench_plain", "Plain gauges.", ["rep", "kpi"], registry=registry)
    for i in range(samples):
        gauge.labels(f"rep-{i // 10:05d}", f"kpi{i % 10}").set(i)
    out = []
    for _ in range(count):
        began = time.perf_counter()
        generate_latest(registry)
        out.append((time.perf_counter() - began) * 1000)
    return out
