"""One soak run: real `callpulse aggregator` workers on fresh topics, a stream of events, faults.

A `Run` makes the run's topics and consumer group (one broker serves many runs), starts and
SIGKILLs, SIGSTOPs or SIGTERMs workers, restarts any worker that exits on its own (the
supervisor's part: a fail-stop exits 70), sends the floor's events in chunks from a thread, and
measures: lost offsets (the coverage oracle), over-commits, double and missing counts against
the reference fold, the longest held commit on the workers' metrics, and the time from the
last event (and fault) to exact KPIs with complete coverage.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from schemas.events import CallEvent, event_to_json
from services.aggregator.domain.reference import fold
from services.kit.kafka import ensure_topics
from tests.e2e.scenario import free_port
from tests.integration.aggregator.support import read_records
from tests.soak import coverage

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4
NAMES = ("events", "facts", "kpis", "calls", "alerts", "roster", "dead_letters")
WINDOWS = ("today", "week", "month")
COUNTS = ("dials", "inbound_calls", "connects", "conversations", "conversions", "csat_responses")
"""The KPIs that count events: above the reference is a double count, below a lost one."""


@dataclass
class Worker:
    """One worker slot: its process, restarted under the same name and data folder."""

    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    paused: bool = False
    wanted: bool = True
    """Whether the supervisor restarts it when it exits on its own."""


class Run:
    """The topics, workers and measurements of one run."""

    def __init__(
        self,
        bootstrap: str,
        work: Path,
        timezone: str,
        *,
        env: dict[str, str] | None = None,
        session_timeout: float = 6.0,
    ) -> None:
        self.bootstrap, self.work = bootstrap, work
        work.mkdir(parents=True, exist_ok=True)
        self.id = f"s{uuid.uuid4().hex[:8]}"
        self.topic = {name: f"{self.id}.{name}" for name in NAMES}
        compacted = [self.topic["kpis"], self.topic["calls"], self.topic["roster"]]
        asyncio.run(
            ensure_topics(
                bootstrap, self.topic.values(), partitions=PARTITIONS, compacted=compacted
            )
        )
        self.coverage_dir = work / "coverage"
        self.env = {
            "CALLPULSE_KAFKA_BOOTSTRAP": bootstrap,
            "CALLPULSE_APP_ID": f"{self.id}-agg",
            "CALLPULSE_PARTITIONS": str(PARTITIONS),
            "CALLPULSE_TIMEZONE": timezone,
            "CALLPULSE_CREATE_TOPICS": "true",
            "CALLPULSE_SESSION_TIMEOUT_SECONDS": str(session_timeout),
            "CALLPULSE_ROLLING_REFRESH_SECONDS": "2",
            "CALLPULSE_ALERT_EVALUATION_SECONDS": "1",
            "CALLPULSE_TEST_COVERAGE_DIR": str(self.coverage_dir),
            **{f"CALLPULSE_{n.upper()}_TOPIC": t for n, t in self.topic.items()},
            **(env or {}),
        }
        self.timezone = timezone
        self.workers: dict[str, Worker] = {}
        self.held_max = 0.0
        self.restarts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._supervise, daemon=True)
        self._watch.start()

    # -- workers ------------------------------------------------------------------------------

    def start(self, name: str, *, wait: bool = True) -> Worker:
        """Start (or restart) the worker `name`; with `wait`, until it answers /healthz."""
        with self._lock:
            worker = self.workers.get(name) or Worker(name, free_port())
            self.workers[name] = worker
            worker.wanted = True
            self._spawn(worker)
        if wait:
            self.wait_healthy(worker)
        return worker

    def _spawn(self, worker: Worker) -> None:
        worker.starts += 1
        env = {
            **os.environ,
            **self.env,
            "CALLPULSE_WEB_PORT": str(worker.port),
            "CALLPULSE_DATA_DIR": str(self.work / worker.name),
        }
        out = (self.work / f"{worker.name}.log").open("ab")
        worker.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "aggregator", "--loglevel", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        worker.paused = False

    def wait_healthy(self, worker: Worker, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url(worker)}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker {worker.name} not healthy after {timeout:.0f} s")

    def wait_ready(self, worker: Worker, timeout: float = 90) -> None:
        """Until the worker's /readyz says it is settled (its tables recovered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url(worker)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker {worker.name} not ready after {timeout:.0f} s")

    def url(self, worker: Worker) -> str:
        return f"http://127.0.0.1:{worker.port}"

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the worker's process group; SIGKILL and SIGTERM also wait for the exit."""
        worker = self.workers[name]
        proc = worker.proc
        if proc is None or proc.poll() is not None:
            return
        with self._lock:
            if sig in (signal.SIGKILL, signal.SIGTERM):
                worker.wanted = False
        os.killpg(proc.pid, sig)
        if sig == signal.SIGSTOP:
            worker.paused = True
        elif sig == signal.SIGCONT:
            worker.paused = False
        else:
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def _supervise(self) -> None:
        """Restart workers that exit on their own; read held commits off their metrics."""
        while not self._stop.is_set():
            with self._lock:
                workers = list(self.workers.values())
                for worker in workers:
                    code = worker.proc.poll() if worker.proc is not None else None
                    if code is not None and worker.wanted:
                        worker.exits.append(code)
                        self.restarts += 1
                        self._spawn(worker)
            for worker in workers:
                if worker.paused or worker.proc is None or worker.proc.poll() is not None:
                    continue
                self.held_max = max(self.held_max, _held(self.url(worker)))
            self._stop.wait(1.0)

    def close(self) -> None:
        """Stop every worker of the run (SIGTERM, then SIGKILL)."""
        self._stop.set()
        self._watch.join(timeout=5)
        for name, worker in self.workers.items():
            if worker.paused and worker.proc is not None:
                self.kill(name, signal.SIGCONT)
            self.kill(name, signal.SIGTERM)

    def fired(self, text: str) -> int:
        """How many lines of the workers' logs hold `text`."""
        return sum(
            (self.work / f"{name}.log").read_text(errors="replace").count(text)
            for name in self.workers
        )

    # -- traffic ------------------------------------------------------------------------------

    def send(self, items: list[tuple[bytes, bytes]], topic: str = "events") -> None:
        """Send (key, value) pairs, acks=all, retrying through a broker restart."""
        deadline = time.monotonic() + 120
        while True:
            try:
                asyncio.run(_produce(self.bootstrap, self.topic[topic], items))
                return
            except Exception:  # the broker is restarting: send again (duplicates are fine)
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def stream(
        self, items: list[tuple[bytes, bytes]], chunks: int, seconds: float
    ) -> threading.Thread:
        """Send `items` in `chunks` spread over `seconds`, from a thread."""

        def run() -> None:
            size = max(1, -(-len(items) // chunks))
            for i in range(0, len(items), size):
                self.send(items[i : i + size])
                time.sleep(seconds / chunks)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    # -- measurements -------------------------------------------------------------------------

    def latest(self) -> dict[str, dict[str, Any]]:
        """rep -> window -> KPIs of the last snapshot per rep on the kpis topic."""
        records = asyncio.run(read_records(self.bootstrap, self.topic["kpis"]))
        out: dict[str, dict[str, Any]] = {}
        for record in records:
            if record.key is not None and record.value is not None:
                out[record.key.decode()] = json.loads(record.value)["windows"]
        return out

    def compare(self, events: list[CallEvent]) -> dict[str, Any]:
        """Counts above the reference (double counts), below it (lost), rep-windows that differ
        (and the first few differences, for the record)."""
        want = fold(events, datetime.now(UTC), default_timezone=self.timezone)
        got = self.latest()
        double = missing = differ = 0
        diffs: list[str] = []
        for rep, windows in want.items():
            for window in WINDOWS:
                values = windows[window]
                mine = got.get(rep, {}).get(window) or {}
                if any(mine.get(k) != v for k, v in values.items()):
                    differ += 1
                    wrong = {k: (mine.get(k), v) for k, v in values.items() if mine.get(k) != v}
                    diffs.append(f"{rep} {window} {wrong} (got, want)")
                for name in COUNTS:
                    delta = int(mine.get(name) or 0) - int(values.get(name) or 0)
                    double += max(0, delta)
                    missing += max(0, -delta)
        counts: dict[str, Any] = {"double_counts": double, "missing_counts": missing}
        return counts | {"differ": differ, "diffs": diffs[:12]}

    def oracle(self) -> tuple[dict[Any, list[tuple[int, int]]], list[Any]]:
        """(holes, over-commits) of the events and facts topics so far."""
        topics = [self.topic["events"], self.topic["facts"]]
        return coverage.check(self.coverage_dir, self.bootstrap, topics)

    def converge(
        self, events: list[CallEvent], timeout: float, *, interval: float = 2.0
    ) -> dict[str, Any]:
        """Wait until the KPIs are exact, every offset processed and no commit passed a hole;
        the measurements at that moment (or at the timeout)."""
        began = time.monotonic()
        deadline = began + timeout
        while True:
            counts = self.compare(events)
            holes, over = self.oracle()
            exact = not counts["differ"] and not holes and not over
            if exact or time.monotonic() > deadline:
                return {
                    "converged": exact,
                    "converge_seconds": round(time.monotonic() - began, 1) if exact else None,
                    "lost_offsets": coverage.lost(holes),
                    "holes": {f"{t}:{p}": r for (t, p), r in holes.items()},
                    "over_commits": len(over),
                    **counts,
                }
            time.sleep(interval)


def _held(url: str) -> float:
    """The largest held-commit gauge on a worker's /metrics (0 when it does not answer)."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("callpulse_aggregator_commit_held_seconds{")
    ]
    return max(values, default=0.0)


async def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=10000
    )
    try:
        await producer.start()
        for key, value in items:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def stream_of(events: list[CallEvent], rng: random.Random) -> list[tuple[bytes, bytes]]:
    """The events with 20 % duplicates, shuffled, as (key, value) pairs keyed by call."""
    stream = events + rng.sample(events, len(events) // 5)
    rng.shuffle(stream)
    return [(e.call_id.encode(), event_to_json(e)) for e in stream]
