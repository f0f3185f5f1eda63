"""SSE fan-out: server CPU per KPI update delivered to 500 connected `GET /v1/stream` clients.

The embedded server (`callpulse run`, signed, SQLite) is pinned to cpu0; this process opens the
clients on one asyncio loop (cpu1), waits until every one has its initial state, measures the
server's idle CPU over a quiet phase, then posts N signed `call.started` events at a steady pace,
each to one rep of the team, so each produces one `kpi` snapshot fanned out to every client.
CPU per update = (update-phase CPU - idle CPU scaled to the same length) / N.

Baseline: `baseline_app` below, a bare sse-starlette app on uvicorn (cpu0) that broadcasts a
payload of the same size (a captured `kpi` data line) to the same number of clients, N times at
the same pace, triggered by a POST; measured the same way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sse_starlette import EventSourceResponse, ServerSentEvent
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.support import Context, Row, console, free_port, ratio, service, unique, wait_http

CLIENTS = 500
REPS = 10  # the team's reps; updates go round-robin, so one rep changes every REPS x PACE s
PACE_S = 0.5  # between updates: > the engine's 250 ms snapshot coalescing
SETTLE_S = 3.0  # after the last update, for the last deliveries to arrive
SECRET = "whsec_" + base64.b64encode(b"bench-sse-secret-0123456789abcd").decode()
ADMIN_KEY = "cp_bench_admin_key_0123456789abcdef"
TARGET = "no target in issue 6; issue 5 asks for the number"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Clients:
    """What the SSE clients saw: `kpi` events per client, connected / failed counts."""

    kpis: list[int]
    changed: list[int]  # of which the rep's today dials differ from the previous one's
    opened: int = 0
    failed: list[str] = field(default_factory=list)
    ended: int = 0  # streams the server closed
    sample: str = ""  # one `kpi` data line, for the baseline's payload size
    track: bool = True  # compare dials (the baseline repeats one payload: every one counts)


def _changed(data: str, last: dict[str, object]) -> bool:
    """Whether a `kpi` snapshot shows new dials for its rep."""
    try:
        snap = json.loads(data)
        rep, dials = snap["rep_id"], snap["windows"]["today"]["dials"]
    except (ValueError, KeyError, TypeError):
        return True
    before = last.get(rep)
    last[rep] = dials
    return bool(before != dials)


async def _client(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], i: int, seen: Clients
) -> None:
    try:
        async with http.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                seen.failed.append(f"HTTP {response.status_code}")
                return
            seen.opened += 1
            kpi = False
            last: dict[str, object] = {}
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kpi = line[6:].strip() == "kpi"
                elif kpi and line.startswith("data:"):
                    seen.kpis[i] += 1
                    data = line[5:].lstrip()
                    if not seen.sample:
                        seen.sample = data
                    if not seen.track or _changed(data, last):
                        seen.changed[i] += 1
                    kpi = False
            seen.ended += 1
    except httpx.HTTPError as exc:
        seen.failed.append(f"{type(exc).__name__}: {exc}")


async def _wait(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {within:.0f} s")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Phase:
    """One measured fan-out: CPU of the server over the quiet and the update phases."""

    updates: int
    idle_cpu: float
    idle_s: float
    busy_cpu: float
    busy_s: float
    delivered: int
    fresh: int  # deliveries showing new dials for their rep
    fresh_min: int  # fewest such on one client
    quiet: int  # deliveries during the quiet phase
    expected: int
    per_client_min: int
    per_client_max: int
    opened: int
    failed: list[str]
    ended: int
    sample: str

    @property
    def cpu_above_idle(self) -> float:
        """Server CPU seconds of the update phase minus idle CPU over as long a time."""
        return max(0.0, self.busy_cpu - self.idle_cpu * self.busy_s / self.idle_s)

    @property
    def ms_per_update(self) -> float:
        """Server CPU ms per update above idle, fanned out to every client."""
        return self.cpu_above_idle * 1000 / self.updates

    @property
    def us_per_delivery(self) -> float:
        """Server CPU µs per `kpi` event delivered to one client."""
        return self.cpu_above_idle * 1e6 / max(1, self.delivered)


async def _fan_out(
    base: str,
    stream_path: str,
    headers: dict[str, str],
    pid: int,
    updates: int,
    initial: int,
    update: Callable[[httpx.AsyncClient, int], Awaitable[None]],
    *,
    track: bool,
) -> Phase:
    """Connect CLIENTS, wait for `initial` kpis each, quiet phase, `updates` updates, settle."""
    seen = Clients(kpis=[0] * CLIENTS, changed=[0] * CLIENTS, track=track)
    limits = httpx.Limits(max_connections=CLIENTS + 10, max_keepalive_connections=CLIENTS + 10)
    timeout = httpx.Timeout(30, read=None)
    async with (
        httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as http,
        httpx.AsyncClient(base_url=base, timeout=30) as poster,
    ):
        tasks = [
            asyncio.create_task(_client(http, stream_path, headers, i, seen))
            for i in range(CLIENTS)
        ]
        try:
            await _wait(
                lambda: min(seen.kpis) >= initial or bool(seen.failed),
                120,
                f"{CLIENTS} clients with {initial} initial kpi events",
            )
            if seen.failed:
                raise RuntimeError(f"{len(seen.failed)} clients failed: {seen.failed[0]}")
            await asyncio.sleep(1.0)
            quiet = sum(seen.kpis)
            planned = updates * PACE_S + SETTLE_S
            idle_began, idle_cpu0 = time.monotonic(), cpu_seconds(pid)
            await asyncio.sleep(planned)
            idle_cpu, idle_s = cpu_seconds(pid) - idle_cpu0, time.monotonic() - idle_began
            start, fresh = list(seen.kpis), list(seen.changed)
            quiet = sum(start) - quiet
            busy_began, busy_cpu0 = time.monotonic(), cpu_seconds(pid)
            for n in range(updates):
                await update(poster, n)
                await asyncio.sleep(max(0.0, busy_began + (n + 1) * PACE_S - time.monotonic()))
            await asyncio.sleep(SETTLE_S)
            busy_cpu, busy_s = cpu_seconds(pid) - busy_cpu0, time.monotonic() - busy_began
            got = [k - s for k, s in zip(seen.kpis, start, strict=True)]
            new = [k - s for k, s in zip(seen.changed, fresh, strict=True)]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return Phase(
        updates=updates,
        idle_cpu=idle_cpu,
        idle_s=idle_s,
        busy_cpu=busy_cpu,
        busy_s=busy_s,
        delivered=sum(got),
        fresh=sum(new),
        fresh_min=min(new),
        quiet=quiet,
        expected=updates * CLIENTS,
        per_client_min=min(got),
        per_client_max=max(got),
        opened=seen.opened,
        failed=seen.failed,
        ended=seen.ended,
        sample=seen.sample,
    )


def _signed(body: bytes) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, now, body.decode()),
    }


def _call_started(run_id: str, rep: str, n: int) -> bytes:
    event = {
        "event_id": f"{run_id}-e{n}",
        "type": "call.started",
        "call_id": f"{run_id}-c{n}",
        "rep_id": rep,
        "direction": "outbound",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(event).encode()


async def _post_event(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/v1/events", content=body, headers=_signed(body))
    if response.status_code != 202:
        raise RuntimeError(f"event rejected: {response.status_code} {response.text}")


async def _callpulse(base: str, run_id: str, pid: int, updates: int) -> Phase:
    team = f"{run_id}-team"
    reps = [f"{run_id}-rep-{i:02d}" for i in range(REPS)]
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as admin:
        (await admin.put(f"/v1/teams/{team}", json={"name": "SSE bench"})).raise_for_status()
        for rep in reps:
            body = {"name": rep, "team_id": team}
            (await admin.put(f"/v1/reps/{rep}", json=body)).raise_for_status()
        for i, rep in enumerate(reps):  # every rep exists (and is in the team) before clients
            await _post_event(admin, _call_started(run_id, rep, 10_000 + i))

        async def listed() -> int:
            got = await admin.get(f"/v1/teams/{team}/kpis", params={"window": "today"})
            return len(got.json().get("reps", [])) if got.status_code == 200 else 0

        deadline = time.monotonic() + 30
        while await listed() < REPS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"team {team} never listed its {REPS} reps")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # past the snapshot coalescing: no pending snapshot

    async def update(client: httpx.AsyncClient, n: int) -> None:
        await _post_event(client, _call_started(run_id, reps[n % REPS], n))

    path = f"/v1/stream?team_id={team}"
    return await _fan_out(base, path, headers, pid, updates, REPS, update, track=True)


async def _baseline(base: str, pid: int, updates: int) -> Phase:
    async def update(client: httpx.AsyncClient, n: int) -> None:
        (await client.post("/broadcast")).raise_for_status()

    return await _fan_out(base, "/stream", {}, pid, updates, 1, update, track=False)


def run(ctx: Context) -> list[Row]:
    """CPU ms per KPI update fanned out to CLIENTS SSE clients, vs bare sse-starlette."""
    run_id = unique("sse")
    updates = ctx.count(50, 20)
    data = ctx.workdir / "sse"
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_KAFKA_BOOTSTRAP": "",
        "CALLPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'cp.db'}",
    }
    port = free_port()
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(data)]
    with service("sse-embedded", args, env, ctx) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz", proc=proc, timeout=90)
        with console.status(f"callpulse: {CLIENTS} SSE clients, {updates} updates"):
            real = asyncio.run(_callpulse(base, run_id, _server_pid(proc), updates))
    console.log(f"callpulse: {real.ms_per_update:.2f} ms/update, {_deliveries(real)}")

    payload_file = ctx.workdir / "sse-payload.json"
    payload_file.write_text(real.sample)
    port = free_port()
    args = ["uvicorn", "bench.scenarios.sse:baseline_app", "--port", str(port)]
    args += ["--log-level", "warning"]
    baseline_env = {"BENCH_SSE_PAYLOAD_FILE": str(payload_file)}
    with service("sse-baseline", args, baseline_env, ctx, bench_code=True) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", proc=proc)
        with console.status(f"bare sse-starlette: {CLIENTS} clients, {updates} broadcasts"):
            bare = asyncio.run(_baseline(base, _server_pid(proc), updates))
    console.log(f"bare: {bare.ms_per_update:.2f} ms/broadcast, {_deliveries(bare)}")

    return [
        Row(
            f"SSE fan-out to {CLIENTS} clients (CPU per update)",
            f"{real.ms_per_update:.1f} ms CPU per update "
            f"({real.us_per_delivery:.0f} µs per delivered kpi event)",
            f"{bare.ms_per_update:.1f} ms CPU per broadcast ({bare.us_per_delivery:.0f} µs per "
            "delivery; bare sse-starlette, same payload size, same clients)",
            ratio(real.ms_per_update, bare.ms_per_update),
            TARGET,
            None,
            "server 1 (taskset cpu0); SSE clients + poster on one asyncio loop (cpu1)",
            notes=f"{updates} signed call.started events, one every {PACE_S} s, round-robin "
            f"over {REPS} reps of one team; kpi payload {len(real.sample):,} bytes; "
            f"callpulse {_deliveries(real)}; baseline {_deliveries(bare)}; CPU = utime+stime "
            "over the updates + settle minus an equally long quiet phase (500 clients "
            "connected); ratio is CPU, lower is better",
            raw={
                "clients": CLIENTS,
                "updates": updates,
                "callpulse": _raw(real),
                "baseline": _raw(bare),
            },
        )
    ]


def _server_pid(proc: subprocess.Popen[bytes]) -> int:
    """The Python process: `taskset` execs it, so it is the Popen's own pid."""
    return proc.pid


def _deliveries(phase: Phase) -> str:
    text = (
        f"{phase.delivered:,} kpi deliveries for {phase.expected:,} expected "
        f"(per client {phase.per_client_min}-{phase.per_client_max}), of which "
        f"{phase.fresh:,} with new dials (fewest on a client {phase.fresh_min}), "
        f"{phase.quiet:,} during the quiet phase, {phase.opened}/{CLIENTS} connected"
    )
    if phase.failed:
        text += f", {len(phase.failed)} failed ({phase.failed[0]})"
    if phase.ended:
        text += f", {phase.ended} closed by the server"
    return text


def _raw(phase: Phase) -> dict[str, object]:
    return {
        "ms_per_update": phase.ms_per_update,
        "idle_cpu_s": phase.idle_cpu,
        "idle_s": phase.idle_s,
        "busy_cpu_s": phase.busy_cpu,
        "busy_s": phase.busy_s,
        "cpu_above_idle_s": phase.cpu_above_idle,
        "us_per_delivery": phase.us_per_delivery,
        "delivered": phase.delivered,
        "fresh": phase.fresh,
        "fresh_min": phase.fresh_min,
        "quiet": phase.quiet,
        "expected": phase.expected,
        "per_client_min": phase.per_client_min,
        "per_client_max": phase.per_client_max,
        "opened": phase.opened,
        "failed": len(phase.failed),
        "ended_by_server": phase.ended,
        "payload_bytes": len(phase.sample),
    }


# --- the baseline: a bare sse-starlette broadcaster (run by uvicorn in its own process) ---

_subscribers: set[asyncio.Queue[str]] = set()
_payload: list[str] = []


def _the_payload() -> str:
    if not _payload:
        path = os.environ.get("BENCH_SSE_PAYLOAD_FILE")
        _payload.append(Path(path).read_text() if path else "x" * 2000)
    return _payload[0]


async def _stream(request: Request) -> Response:
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
    _subscribers.add(queue)

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(data=_the_payload(), event="kpi")  # the initial state
            while True:
                yield ServerSentEvent(data=await queue.get(), event="kpi")
        finally:
            _subscribers.discard(queue)

    return EventSourceResponse(events(), ping=15, send_timeout=30)


async def _broadcast(request: Request) -> Response:
    payload = _the_payload()
    for queue in list(_subscribers):
        queue.put_nowait(payload)
    return JSONResponse({"clients": len(_subscribers)}, status_code=202)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


baseline_app = Starlette(
    routes=[
        Route("/stream", _stream),
        Route("/broadcast", _broadcast, methods=["POST"]),
        Route("/healthz", _healthz),
    ]
)
