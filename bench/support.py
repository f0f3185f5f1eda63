"""Shared machinery of the benchmarks: processes, ports, wrk, Kafka helpers and result rows."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
console = Console()

SERVER_CPU = "0"  # services under test are pinned here (taskset)
CLIENT_CPU = "1"  # load generators (wrk, this process) run here
KAFKA_NOTE = "Kafka broker unpinned (shares both)"


@dataclass
class Context:
    """What every scenario gets: the broker, a scratch directory and the run's size."""

    bootstrap: str
    workdir: Path
    quick: bool
    profile: bool = False
    source: Path = ROOT  # where the services under test run from (a `--tree` export or ROOT)

    def seconds(self, full: float, quick: float) -> float:
        """A duration that shrinks under --quick."""
        return quick if self.quick else full

    def count(self, full: int, quick: int) -> int:
        """A size that shrinks under --quick."""
        return quick if self.quick else full


@dataclass
class Row:
    """One line of the results table; `raw` keeps every measured number for the JSON file."""

    scenario: str
    figure: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    cores: str
    notes: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def skipped(scenario: str, target: str, why: str) -> Row:
    """A row for a scenario that did not produce a figure."""
    return Row(scenario, "—", "—", None, target, None, "—", notes=f"not measured: {why}")


def ratio(figure: float, baseline: float) -> float | None:
    """figure / baseline, or None when the baseline is 0."""
    return round(figure / baseline, 3) if baseline else None


def unique(prefix: str) -> str:
    """A run-unique name, so topics and consumer groups never collide between runs."""
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def export_tree(rev: str, into: Path) -> Path:
    """A clean copy of commit `rev` (git archive: reads the repository, changes nothing)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def pin_self(cpu: str = CLIENT_CPU) -> None:
    """Keep this (client) process off the server's core."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {int(c) for c in cpu.split(",")})


@contextmanager
def service(
    name: str,
    args: Sequence[str],
    env: dict[str, str],
    ctx: Context,
    *,
    cpus: str | None = SERVER_CPU,
    bench_code: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m <args>` as its own process (pinned to `cpus`), logged, stopped at the end.

    callpulse services run from `ctx.source`; `bench_code` ones (the baselines) from this tree.
    """
    source = ROOT if bench_code else ctx.source
    log = ctx.workdir / f"{name}.log"
    command = [sys.executable, "-m", *args]
    if cpus is not None and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", cpus, *command]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=source,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(source), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """TERM, then KILL after 20 s: only this one process we started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(
    url: str,
    *,
    timeout: float = 60.0,
    proc: subprocess.Popen[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> float:
    """Wait until `url` answers 200; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class WrkResult:
    """What wrk measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str,
    ctx: Context,
    *,
    seconds: float,
    connections: int,
    script: str | None = None,
    headers: Iterable[str] = (),
) -> WrkResult:
    """Run wrk (1 thread, pinned to the client core) and parse its --latency report."""
    command = ["taskset", "-c", CLIENT_CPU] if (os.cpu_count() or 1) > 1 else []
    command += ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    command += ["--timeout", "5s"]
    if script is not None:
        path = ctx.workdir / f"wrk-{uuid.uuid4().hex[:6]}.lua"
        path.write_text(script)
        command += ["-s", str(path)]
    for header in headers:
        command += ["-H", header]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    out = done.stdout
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", out))
    p50 = _ms(_search(r"\n\s+50%\s+(\S+)", out))
    p99 = _ms(_search(r"\n\s+99%\s+(\S+)", out))
    requests = int(_search(r"(\d+) requests in", out))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return WrkResult(rps, p50, p99, requests, non_2xx, errors)


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"wrk output lacks {pattern!r}:\n{text}")
    return match.group(1)


async def produce(
    bootstrap: str, topic: str, items: Iterable[tuple[bytes, bytes]], *, chunk: int = 5000
) -> int:
    """Send (key, value) pairs with acks=all and idempotence; returns how many."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for key, value in items:
            pending.append(await producer.send(topic, value, key=key))
            sent += 1
            if len(pending) >= chunk:
                for future in pending:
                    await future
                pending.clear()
        for future in pending:
            await future
    finally:
        await producer.stop()
    return sent


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
