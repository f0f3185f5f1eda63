"""Embedded restart: seconds from starting `callpulse run` to /readyz 200 over a year's event log.

The log is what a 50-rep floor leaves in a year: the simulator's floor (5 teams in London, New
York and Shanghai, weekday 09:00-18:00 shifts, ~60 calls per rep and working day) streamed over
the year before now, written straight into the SQLite log with executemany (the newest
2,000,000 events are kept). The checkpoint a running engine writes is then made by an engine in
a child process of the bench (it replays everything, sweeps as its timer would, and stops
cleanly, which checkpoints), and a tail of events is appended after it, as a kill leaves.
Timed: `callpulse run` over that file (3 starts, each killed with SIGKILL once ready, so none
writes a checkpoint of its own); the baseline, measured right after on the same file with the
checkpoint deleted: the same start replaying the whole log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import shutil
import sqlite3
import statistics
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from bench.support import Context, Row, console, free_port, ratio, service, wait_http
from schemas.calls import CallRecord
from schemas.events import CallEvent, event_to_json
from services.aggregator.config import AggregatorSettings
from services.aggregator.core import Aggregator, MemoryStore, cadence_of, rules_of
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.api.db.engine import create_engine, migrate
from services.simulator.floor import FloorConfig, stream
from services.standalone.engine import EmbeddedEngine
from services.standalone.eventlog import SCHEMA, SqliteEventLog

FLOOR = FloorConfig(seed=17, reps=50, teams=5, dials_per_hour=7.0)
"""~2.2 million events a year (measured over 8 weeks): a year's log holds the 2,000,000 kept."""
YEAR_EVENTS = 2_000_000
TAIL = 1_000
"""Events after the checkpoint: hours of this floor (a kill leaves at most the last
CHECKPOINT_SECONDS, 30 s by default, a handful of events here), so an upper bound."""
RESTARTS = 3
TARGET_SECONDS = 10.0
SECRET = "whsec_" + base64.b64encode(b"bench-restart-secret-0123456789").decode()
INSERT = (
    "INSERT INTO events (call_id, event_id, body, received_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (call_id, event_id) DO NOTHING"
)


def run(ctx: Context) -> list[Row]:
    """Write the log, checkpoint it with an engine, then time restarts with and without it."""
    count = ctx.count(YEAR_EVENTS, 100_000)
    data = ctx.workdir / "restart"
    data.mkdir(parents=True, exist_ok=True)
    log_path = data / "events.db"
    now = datetime.now(UTC)
    # a year for the full count; at least 3 weeks (15 working days) for --quick
    span = timedelta(days=max(21.0, 365 * count / YEAR_EVENTS))
    tail, first_at = _write_log(log_path, count, now - span, now)
    console.log(
        f"log: {count:,} events from {first_at:%Y-%m-%d} to {tail[-1].occurred_at:%Y-%m-%d}, "
        f"{log_path.stat().st_size / 2**20:,.0f} MiB"
    )
    # in a child process: the replay's memory goes back to the system before the timed starts
    with (
        console.status(f"checkpoint: an in-process engine replays {count - TAIL:,} events"),
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child,
    ):
        inproc_seconds, state_rows = child.submit(checkpoint, log_path).result()
    console.log(f"in-process replay of {count - TAIL:,} events: {inproc_seconds:.1f} s")
    _append(log_path, tail)
    template = asyncio.run(_history_template(ctx.workdir / "history-template.db"))

    restarts = [_start(ctx, data, template, f"restart-{n}") for n in range(1, RESTARTS + 1)]
    restart = statistics.median(seconds for seconds, _ in restarts)
    replayed = {line["events"] for _, line in restarts}
    console.log(f"restart with the checkpoint: {restart:.2f} s (median of {RESTARTS})")
    _drop_checkpoint(log_path)
    full, full_line = _start(ctx, data, template, "replay-everything", timeout=3600)
    console.log(f"restart replaying everything: {full:.1f} s")
    return [
        Row(
            f"embedded restart, {count:,}-event log",
            f"{restart:.2f} s to /readyz with the checkpoint (median of {RESTARTS}: "
            + ", ".join(f"{s:.2f}" for s, _ in restarts)
            + f"); replayed the {TAIL:,}-event tail",
            f"{full:.1f} s to /readyz replaying all {count:,} events (same log, no checkpoint)",
            ratio(restart, full),
            f"ready <= {TARGET_SECONDS:.0f} s",
            restart <= TARGET_SECONDS,
            "server 1 (cpu0); this process polls /readyz every 50 ms (cpu1)",
            notes=(
                f"{FLOOR.reps}-rep simulator floor, {first_at:%Y-%m-%d} to now; log file "
                f"{log_path.stat().st_size / 2**20:,.0f} MiB; checkpoint {state_rows:,} state "
                f"rows (made by an engine in the bench, no HTTP: replay {inproc_seconds:.0f} s, "
                f"then a sweep and a clean stop); engine's own log_replayed: "
                f"{sorted(replayed)} events in "
                f"{[line['seconds'] for _, line in restarts]} s with the checkpoint, "
                f"{full_line['events']:,} in {full_line['seconds']} s without; "
                "time = process spawn to /readyz 200 (imports, migrations check, history writes "
                "of the replayed calls included); ratio is time, lower is better"
            ),
            raw={
                "events": count,
                "tail": TAIL,
                "restart_s": [s for s, _ in restarts],
                "replay_everything_s": full,
                "in_process_replay_s": inproc_seconds,
                "state_rows": state_rows,
                "log_replayed": [line for _, line in restarts] + [full_line],
            },
        )
    ]


def _events(start: datetime, end: datetime) -> Iterator[CallEvent]:
    return takewhile(lambda event: event.occurred_at < end, stream(FLOOR, start))


def _write_log(
    path: Path, count: int, start: datetime, end: datetime
) -> tuple[list[CallEvent], datetime]:
    """The floor's events of [start, end) into a fresh log, keeping the newest `count`; the
    last TAIL of them are returned instead of written (they go in after the checkpoint)."""
    held: deque[CallEvent] = deque()
    written = 0
    rows: list[tuple[str, str, bytes, float]] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[events]:>10,} events"),
        TimeRemainingColumn(),
        console=console,
    )
    with sqlite3.connect(path) as conn, progress:
        conn.executescript(SCHEMA)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # generation only; the engine opens it FULL
        task = progress.add_task(
            f"writing {(end - start).days} days of a {FLOOR.reps}-rep floor",
            total=(end - start).total_seconds(),
            events=0,
        )
        for event in _events(start, end):
            held.append(event)
            if len(held) <= TAIL:
                continue
            out = held.popleft()
            # received about when it happened: the order and age the retention sees
            rows.append(
                (out.call_id, out.event_id, event_to_json(out), out.occurred_at.timestamp())
            )
            if len(rows) >= 20_000:
                conn.executemany(INSERT, rows)
                written += len(rows)
                rows = []
                elapsed = (out.occurred_at - start).total_seconds()
                progress.update(task, completed=elapsed, events=written)
        conn.executemany(INSERT, rows)
        written += len(rows)
        # keep the newest: the oldest surplus goes (AUTOINCREMENT keeps counting after it)
        surplus = max(0, written + len(held) - count)
        conn.execute("DELETE FROM events WHERE seq <= ?", (surplus,))
        progress.update(task, completed=(end - start).total_seconds(), events=written)
        first = conn.execute("SELECT body FROM events ORDER BY seq LIMIT 1").fetchone()
    if written + len(held) < count:
        raise RuntimeError(f"the floor made {written + len(held):,} events, fewer than {count:,}")
    first_at = datetime.fromisoformat(json.loads(first[0])["occurred_at"])
    return list(held), first_at


def checkpoint(path: Path) -> tuple[float, int]:
    """`_checkpoint` in its own event loop (what the child process runs)."""
    return asyncio.run(_checkpoint(path))


async def _checkpoint(path: Path) -> tuple[float, int]:
    """What a running engine leaves: everything applied, swept, checkpointed at a clean stop."""
    settings = AggregatorSettings()
    core = Aggregator.build(
        MemoryStore(),
        MemoryStore(),
        rules=rules_of(settings),
        roster=RosterView(default_timezone=settings.TIMEZONE),
        metrics=Metrics(),
        cadence=cadence_of(settings),
    )

    async def no_history(records: list[CallRecord]) -> None:
        return None

    engine = EmbeddedEngine(
        SqliteEventLog(path), core, cadence_of(settings), lambda snap: None, no_history
    )
    await engine.log.open()
    try:
        began = time.monotonic()
        await engine.start()
        seconds = time.monotonic() - began
        await engine.sweep()  # what its timer does every minute, at the present time
        await engine.stop()
        checkpoint = await engine.log.load_checkpoint()
    finally:
        await engine.log.close()
    if checkpoint is None:
        raise RuntimeError("the engine wrote no checkpoint")
    return seconds, len(checkpoint.state)


def _append(path: Path, events: list[CallEvent]) -> None:
    """The tail, appended after the checkpoint as a running engine would have."""
    received = time.time()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            INSERT, [(e.call_id, e.event_id, event_to_json(e), received) for e in events]
        )


async def _history_template(path: Path) -> Path:
    """A migrated history database: each start gets a copy (a restart finds its history)."""
    db = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(db)
    finally:
        await db.dispose()
    return path


def _drop_checkpoint(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM state")
        conn.execute("DELETE FROM checkpoint")


def _start(
    ctx: Context, data: Path, template: Path, name: str, timeout: float = 120
) -> tuple[float, dict[str, Any]]:
    """Seconds from spawning `callpulse run` over `data` to /readyz 200, and its log_replayed
    line; the process is killed (SIGKILL) once ready, so it writes no checkpoint."""
    history = data / f"{name}-history.db"
    shutil.copy(template, history)
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_KAFKA_BOOTSTRAP": "",
        "CALLPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{history}",
        "CALLPULSE_CHECKPOINT_SECONDS": "3600",  # no periodic checkpoint while timed
        "CALLPULSE_LOG_RETENTION_DAYS": "3650",  # the log stays the same for the baseline
    }
    port = free_port()
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(data)]
    with console.status(f"{name}: waiting for /readyz"):
        began = time.monotonic()
        with service(name, args, env, ctx) as proc:
            ready = wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc, timeout=timeout)
            proc.kill()
            proc.wait()
    seconds = ready - began
    lines = (ctx.workdir / f"{name}.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    [replayed] = [e for e in entries if e.get("event") == "log_replayed"]
    console.log(f"{name}: ready in {seconds:.2f} s, {replayed['events']:,} events replayed")
    return seconds, replayed
