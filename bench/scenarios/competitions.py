"""Competition standings: a 10,000-rep competition (50 teams of 200, each rep with calls in the
running period, stored in the history the way the calls consumer stores them), its standings
page polled by wrk at ~200 req/s, next to the baseline app returning the same bytes.

The API serves standings from memory (totals summed from the history, ranked once per change,
each page serialised once), so the figure is the cost of a wallboard's poll, not of scoring.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from bench.support import Context, Row, console, free_port, ratio, service, wait_http, wrk
from schemas.calls import CallFact, CallRecord
from services.api.db import repository
from services.api.db.engine import create_engine, create_sessionmaker, migrate

REPS = 10_000
TEAM_SIZE = 200
CALLS_PER_REP = 2
CONNECTIONS = 10
PACE_MS = 49  # per connection: 10 connections x (49 ms + service time) ~ 200 req/s
ADMIN_KEY = "cp_bench_admin_key_0123456789abcdef"
PACED_LUA = f"""
delay = function()
  return {PACE_MS}
end
"""


def _record(rep: int, n: int, start: datetime) -> CallRecord:
    talk = 60 + (rep * 37 + n * 101) % 600
    answered = start + timedelta(seconds=10)
    ended = answered + timedelta(seconds=talk)
    sale = (rep + n) % 3 == 0
    facts = [
        CallFact(kpi="dials", at=start, value=Decimal(1)),
        CallFact(kpi="connects", at=answered, value=Decimal(1)),
        CallFact(kpi="talk_seconds", at=ended, value=Decimal(talk)),
    ]
    if talk >= 300:
        facts.append(CallFact(kpi="conversations", at=ended, value=Decimal(1)))
    if sale:
        facts.append(CallFact(kpi="conversions", at=ended, value=Decimal(1)))
    return CallRecord(
        call_id=f"bench-{rep}-{n}",
        version=4,
        rep_id=f"rep-{rep:05d}",
        team_id=f"team-{rep // TEAM_SIZE:02d}",
        direction="outbound",
        started_at=start,
        answered_at=answered,
        ended_at=ended,
        end_status="completed",
        talk_seconds=talk,
        connected=True,
        outcome="sale" if sale else None,
        outcome_at=ended if sale else None,
        last_event_at=ended,
        facts=facts,
    )


async def _seed(url: str, now: datetime) -> int:
    await migrate(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    stored = 0
    try:
        for first in range(0, REPS, 1000):
            records = [
                _record(rep, n, now - timedelta(minutes=30 + (rep + n * 7) % 90))
                for rep in range(first, min(REPS, first + 1000))
                for n in range(CALLS_PER_REP)
            ]
            async with sessions.begin() as session:
                await repository.upsert_calls(session, records)
            stored += len(records)
    finally:
        await engine.dispose()
    return stored


def _competition() -> dict[str, object]:
    return {
        "name": "bench 10,000 reps",
        "timezone": "UTC",
        "participants": {"team_ids": [f"team-{t:02d}" for t in range(REPS // TEAM_SIZE)]},
        "score": [{"kpi": "conversions", "weight": 10}, {"kpi": "conversations", "weight": 1}],
        "minimums": [{"kpi": "avg_talk_seconds", "at_least": 120}],
        "default_target": 25,
        "period": {"kind": "daily"},
        "announce": False,
    }


def run(ctx: Context) -> list[Row]:
    """Standings of a 10,000-rep competition at ~200 req/s vs the same bytes precomputed."""
    seconds = ctx.seconds(15, 5)
    # Mid-day UTC keeps the seeded calls (the last two hours) inside today's period.
    now = datetime.now(UTC)
    url = f"sqlite+aiosqlite:///{ctx.workdir / 'competitions.db'}"
    began = time.monotonic()
    with console.status(f"storing the calls of {REPS:,} reps in the history"):
        stored = asyncio.run(_seed(url, now))
    console.log(f"{stored:,} call records stored in {time.monotonic() - began:.0f} s")
    env = {"CALLPULSE_DATABASE_URL": url, "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}
    env["CALLPULSE_KAFKA_BOOTSTRAP"] = ""
    auth = f"Authorization: Bearer {ADMIN_KEY}"
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with service("api-competitions", ["services.cli", "api", "--port", str(port)], env, ctx) as p:
        wait_http(f"{base}/readyz", proc=p, timeout=90)
        created = httpx.post(
            f"{base}/v1/competitions", json=_competition(), headers=headers, timeout=120
        )
        created.raise_for_status()
        path = f"/v1/competitions/{created.json()['id']}/standings"
        first = httpx.get(f"{base}{path}", headers=headers, timeout=120)
        first.raise_for_status()
        participants = first.json()["participants"]
        payload = first.content
        full_ms = []
        for _ in range(ctx.count(5, 2)):
            t0 = time.perf_counter()
            httpx.get(f"{base}{path}?limit={REPS}", headers=headers, timeout=60).raise_for_status()
            full_ms.append((time.perf_counter() - t0) * 1000)
        with console.status(f"wrk: standings paced to ~200 req/s, {seconds:.0f} s"):
            paced = wrk(
                f"{base}{path}",
                ctx,
                seconds=seconds,
                connections=CONNECTIONS,
                script=PACED_LUA,
                headers=[auth],
            )
        console.log(f"standings paced: {paced}")

    payload_file = ctx.workdir / "standings.json"
    payload_file.write_bytes(payload)
    port = free_port()
    args = ["uvicorn", "bench.baseline_app:app", "--port", str(port), "--log-level", "warning"]
    with service(
        "baseline-standings", args, {"BENCH_PAYLOAD_FILE": str(payload_file)}, ctx, bench_code=True
    ) as p:
        bare_base = f"http://127.0.0.1:{port}"
        wait_http(f"{bare_base}/healthz", proc=p)
        with console.status(f"wrk: precomputed standings, paced, {seconds:.0f} s"):
            bare = wrk(
                f"{bare_base}/v1/teams/x/kpis",
                ctx,
                seconds=seconds,
                connections=CONNECTIONS,
                script=PACED_LUA,
            )
        console.log(f"precomputed: {bare}")
    return [
        Row(
            f"competition standings, {participants:,} reps",
            f"p99 {paced.p99_ms:.1f} ms (p50 {paced.p50_ms:.1f}) at "
            f"{paced.requests_per_second:,.0f} req/s",
            f"p99 {bare.p99_ms:.1f} ms at {bare.requests_per_second:,.0f} req/s "
            "(precomputed payload, same bytes)",
            ratio(paced.p99_ms, bare.p99_ms),
            "p99 <= 20 ms at 200 req/s",
            paced.p99_ms <= 20 and paced.requests_per_second >= 180 and paced.non_2xx == 0,
            "api 1 (cpu0); wrk 1 thread (cpu1)",
            notes=f"first page (100 rows, {len(payload):,} bytes) of {participants:,}; all "
            f"{participants:,} rows in one GET: median {statistics.median(full_ms):.0f} ms "
            f"(sequential); {stored:,} call records in SQLite history; ratio is p99 time, lower "
            f"is better; wrk delay() {PACE_MS} ms, {CONNECTIONS} conns",
            raw={"paced": paced.__dict__, "bare": bare.__dict__, "full_ms": full_ms},
        )
    ]
