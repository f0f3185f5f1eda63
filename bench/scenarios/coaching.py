"""Coaching reads: a 200-rep team's scorecard view (every rep's scorecard and the rankings, a
week against the week before) and the team's 8-week weekday x hour heatmap, over 8 weeks of
history (200 reps, 15 calls a weekday each, stored the way the calls consumer stores them in the
embedded SQLite history), each polled by wrk at ~200 req/s, next to the baseline app returning
the same bytes.

The API reuses a team's scores and heatmap for COACHING_CACHE_SECONDS (30 s), then serves them
while one task recomputes them: the polled figure is the cost of a page's poll, recomputations
included; the first (cold) request of each, which sums the history, is in the notes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx

from bench.support import (
    Context,
    Row,
    WrkResult,
    console,
    free_port,
    ratio,
    service,
    wait_http,
    wrk,
)
from schemas.calls import CallFact, CallRecord
from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker, migrate

REPS = 200
TEAM = "bench-coaching"
TIMEZONE = "Asia/Shanghai"
WEEKS = 8
CALLS_PER_DAY = 15
LAST_DAY = date(2026, 3, 13)  # a Friday: the scorecard's week and the heatmap end here
CONNECTIONS = 10
PACE_MS = 49  # per connection: 10 connections x (49 ms + service time) ~ 200 req/s
ADMIN_KEY = "cp_bench_admin_key_0123456789abcdef"
PACED_LUA = f"""
delay = function()
  return {PACE_MS}
end
"""


def _record(rep: int, n: int, start: datetime) -> CallRecord:
    mix = rep * 7919 + n * 104729
    connected = mix % 100 < 35 + rep % 30
    talk = 30 + mix % 700 if connected else 0
    answered = start + timedelta(seconds=12)
    ended = (answered if connected else start) + timedelta(seconds=talk or 25)
    sale = connected and mix % 9 == 0
    facts = [CallFact(kpi="dials", at=start, value=Decimal(1))]
    if connected:
        facts += [
            CallFact(kpi="connects", at=answered, value=Decimal(1)),
            CallFact(kpi="talk_seconds", at=ended, value=Decimal(talk)),
        ]
        if talk >= 300:
            facts.append(CallFact(kpi="conversations", at=ended, value=Decimal(1)))
    if sale:
        facts += [
            CallFact(kpi="conversions", at=ended, value=Decimal(1)),
            CallFact(kpi="revenue", at=ended, value=Decimal(199)),
        ]
    return CallRecord(
        call_id=f"coach-{rep}-{n}",
        version=4,
        rep_id=f"rep-{rep:03d}",
        team_id=TEAM,
        campaign_id=("spring", "renewal")[mix % 2],
        direction="outbound",
        started_at=start,
        answered_at=answered if connected else None,
        ended_at=ended,
        end_status="completed" if connected else ("no_answer", "busy", "voicemail")[mix % 3],
        talk_seconds=talk,
        connected=connected,
        outcome="sale" if sale else ("not_interested" if connected else None),
        outcome_at=ended if connected else None,
        amount=Decimal(199) if sale else None,
        last_event_at=ended,
        facts=facts,
    )


def _offset(rep: int, n: int) -> timedelta:
    """When a call starts after 09:00: spread over the 9-hour day."""
    return timedelta(minutes=(rep * 13 + n * 37) % 540)


def _weekdays() -> list[date]:
    first = LAST_DAY - timedelta(days=WEEKS * 7 - 1)
    days = (first + timedelta(days=i) for i in range(WEEKS * 7))
    return [d for d in days if d.isoweekday() <= 5]


async def _seed(url: str) -> int:
    await migrate(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    zone = ZoneInfo(TIMEZONE)
    stored = 0
    try:
        for day in _weekdays():
            opening = datetime(day.year, day.month, day.day, 9, tzinfo=zone)
            records = [
                _record(
                    rep,
                    n + 100 * day.toordinal(),
                    opening + timedelta(minutes=(rep * 13 + n * 37) % 540),
                )
                for rep in range(REPS)
                for n in range(CALLS_PER_DAY)
            ]
            async with sessions.begin() as session:
                await repository.upsert_calls(session, records)
            stored += len(records)
    finally:
        await engine.dispose()
    return stored


def _poll(url: str, ctx: Context, seconds: float, auth: str | None) -> WrkResult:
    headers = [auth] if auth else []
    return wrk(
        url, ctx, seconds=seconds, connections=CONNECTIONS, script=PACED_LUA, headers=headers
    )


def _row(name: str, paced: WrkResult, bare: WrkResult, notes: str) -> Row:
    return Row(
        name,
        f"p99 {paced.p99_ms:.1f} ms (p50 {paced.p50_ms:.1f}) at "
        f"{paced.requests_per_second:,.0f} req/s",
        f"p99 {bare.p99_ms:.1f} ms at {bare.requests_per_second:,.0f} req/s "
        "(precomputed payload, same bytes)",
        ratio(paced.p99_ms, bare.p99_ms),
        "p99 <= 50 ms",
        paced.p99_ms <= 50 and paced.non_2xx == 0,
        "api 1 (cpu0); wrk 1 thread (cpu1)",
        notes=notes,
        raw={"paced": paced.__dict__, "bare": bare.__dict__},
    )


def run(ctx: Context) -> list[Row]:
    """A 200-rep team scorecard and the 8-week heatmap at ~200 req/s vs the same bytes."""
    seconds = ctx.seconds(15, 5)
    url = f"sqlite+aiosqlite:///{ctx.workdir / 'coaching.db'}"
    began = time.monotonic()
    with console.status(f"storing {WEEKS} weeks of calls of {REPS} reps in the history"):
        stored = asyncio.run(_seed(url))
    console.log(f"{stored:,} call records stored in {time.monotonic() - began:.0f} s")
    env = {
        "CALLPULSE_DATABASE_URL": url,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_KAFKA_BOOTSTRAP": "",
    }
    auth = f"Authorization: Bearer {ADMIN_KEY}"
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    paths = {
        "scorecard": f"/v1/teams/{TEAM}/scorecard?period=week&date={LAST_DAY}",
        "heatmap": f"/v1/reports/heatmap?team_id={TEAM}&weeks={WEEKS}&date={LAST_DAY}",
    }
    cold: dict[str, float] = {}
    payloads: dict[str, bytes] = {}
    paced: dict[str, WrkResult] = {}
    with service("api-coaching", ["services.cli", "api", "--port", str(port)], env, ctx) as p:
        wait_http(f"{base}/readyz", proc=p, timeout=90)
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            client.put(f"/v1/teams/{TEAM}", json={"timezone": TIMEZONE}).raise_for_status()
            for rep in range(REPS):
                body = {"team_id": TEAM, "name": f"Rep {rep:03d}"}
                client.put(f"/v1/reps/rep-{rep:03d}", json=body).raise_for_status()
            targets = [{"kpi": "dials", "window": "week", "value": 70}]
            client.put(f"/v1/teams/{TEAM}/targets", json={"targets": targets}).raise_for_status()
            for name, path in paths.items():
                t0 = time.perf_counter()
                response = client.get(path)
                response.raise_for_status()
                cold[name] = (time.perf_counter() - t0) * 1000
                payloads[name] = response.content
        for name, path in paths.items():
            with console.status(f"wrk: {name} paced to ~200 req/s, {seconds:.0f} s"):
                paced[name] = _poll(f"{base}{path}", ctx, seconds, auth)
            console.log(f"{name} paced: {paced[name]}")

    rows = []
    for name in paths:
        payload_file = ctx.workdir / f"coaching-{name}.json"
        payload_file.write_bytes(payloads[name])
        port = free_port()
        args = ["uvicorn", "bench.baseline_app:app", "--port", str(port), "--log-level", "warning"]
        env = {"BENCH_PAYLOAD_FILE": str(payload_file)}
        with service(f"baseline-{name}", args, env, ctx, bench_code=True) as p:
            bare_base = f"http://127.0.0.1:{port}"
            wait_http(f"{bare_base}/healthz", proc=p)
            with console.status(f"wrk: precomputed {name}, paced, {seconds:.0f} s"):
                bare = _poll(f"{bare_base}/v1/teams/x/kpis", ctx, seconds, None)
        title = (
            f"coaching team scorecard, {REPS} reps"
            if name == "scorecard"
            else f"coaching heatmap, {WEEKS} weeks"
        )
        rows.append(
            _row(
                title,
                paced[name],
                bare,
                f"first (cold) request {cold[name]:.0f} ms, then reused (30 s, then served "
                f"while refreshed); {len(payloads[name]):,} bytes; {stored:,} call records in "
                f"SQLite history; ratio is p99 time, lower is better; wrk delay() {PACE_MS} ms, "
                f"{CONNECTIONS} conns",
            )
        )
    return rows
