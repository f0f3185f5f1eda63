"""Embedded mode: events/s through one `callpulse run` process, NDJSON batches of 1,000, signed.

Timed from the first POST until a sentinel event, posted after the last batch was accepted, is
visible in the same process's API; baseline: the bare FastAPI app parsing the same batches.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from bench.scenarios.floor import floor_events
from bench.support import Context, Row, console, free_port, ratio, service, unique, wait_http
from schemas.events import event_to_json

BATCH = 1000
CONCURRENCY = 4
SECRET = "whsec_" + base64.b64encode(b"bench-embedded-secret-0123456789").decode()
ADMIN_KEY = "cp_bench_admin_key_0123456789abcdef"


def run(ctx: Context) -> list[Row]:
    """Post the floor to the embedded server and to the bare app."""
    run_id = unique("embedded")
    count = ctx.count(50_000, 10_000)
    with console.status(f"generating {count:,} events"):
        bodies = [event_to_json(e) for e in floor_events(count, reps=500, prefix=f"{run_id}-")]
    batches = [b"\n".join(bodies[i : i + BATCH]) for i in range(0, len(bodies), BATCH)]
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_KAFKA_BOOTSTRAP": "",
        "CALLPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{ctx.workdir / 'embedded' / 'cp.db'}",
    }
    port = free_port()
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(ctx.workdir / "embedded")]
    with service("embedded", args, env, ctx) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz", proc=proc, timeout=90)
        with console.status(f"posting {count:,} events to the embedded server"):
            accepted, visible = asyncio.run(_post_and_follow(base, batches, run_id))
    accept_rate, rate = count / accepted, count / visible
    console.log(
        f"embedded: accepted at {accept_rate:,.0f} events/s, visible at {rate:,.0f} events/s"
    )
    port = free_port()
    args = ["uvicorn", "bench.baseline_app:app", "--port", str(port), "--log-level", "warning"]
    with service("baseline-embedded", args, {}, ctx, bench_code=True) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", proc=proc)
        with console.status("posting the same batches to the bare app"):
            bare_seconds = asyncio.run(_post_all(base, batches))
    bare_rate = count / bare_seconds
    console.log(f"bare app: {bare_rate:,.0f} events/s")
    return [
        Row(
            "embedded mode, NDJSON batches of 1,000",
            f"{rate:,.0f} events/s end to end ({accept_rate:,.0f}/s accepted)",
            f"{bare_rate:,.0f} events/s (bare FastAPI parsing the same NDJSON)",
            ratio(rate, bare_rate),
            "— (no target)",
            None,
            f"server 1 (cpu0); httpx client {CONCURRENCY} in flight (cpu1)",
            notes=f"{count:,} signed events; end = a sentinel posted last is visible in the API",
            raw={"events": count, "accepted_s": accepted, "visible_s": visible},
        )
    ]


def _headers(body: bytes) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return {
        "content-type": "application/x-ndjson",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, now, body.decode()),
    }


async def _post_all(base: str, batches: list[bytes]) -> float:
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def post(body: bytes) -> None:
            async with slots:
                response = await client.post("/v1/events", content=body, headers=_headers(body))
                if response.status_code != 202:
                    raise RuntimeError(f"answered {response.status_code}: {response.text}")

        began = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for body in batches:
                group.create_task(post(body))
        return time.monotonic() - began


async def _post_and_follow(base: str, batches: list[bytes], run_id: str) -> tuple[float, float]:
    """(seconds until every batch was accepted, seconds until the sentinel is visible)."""
    began = time.monotonic()
    accepted = await _post_all(base, batches)
    rep = f"{run_id}-sentinel"
    sentinel = {
        "event_id": f"{run_id}-sentinel-e1",
        "type": "call.started",
        "call_id": f"{run_id}-sentinel-c1",
        "rep_id": rep,
        "direction": "outbound",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        body = json.dumps(sentinel).encode()
        response = await client.post("/v1/events", content=body, headers=_headers(body))
        if response.status_code != 202:
            raise RuntimeError(f"sentinel rejected: {response.status_code} {response.text}")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            got = await client.get(f"/v1/reps/{rep}/kpis?window=today", headers=headers)
            if got.status_code == 200 and got.json().get("dials") == 1:
                return accepted, time.monotonic() - began
            await asyncio.sleep(0.02)
    raise RuntimeError("the sentinel never became visible")
