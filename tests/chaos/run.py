"""`make chaos`: the distributed stack under kills, against the simulator's truth.

Its own Kafka broker (so the broker can be killed without touching anyone else's), the
PostgreSQL of `make infra`, then ingest, the API and two aggregator workers as OS processes.
The simulator sends a live floor, signed and retrying, at a steady rate while the schedule
SIGKILLs and restarts, in turn: ingest, worker 1, the API, the broker, worker 2, worker 1 and
worker 2 again. Then `callpulse verify` compares every rep's KPIs with the simulator's ground
truth of the events ingest accepted, exactly. Exit 0 only on an exact match with no event
given up; the summary says how many events were sent, retried, and how long after the last
event the numbers were exact.

With `--brokers 3` the stack runs on a three-node KRaft cluster instead: every topic made
first by `callpulse topics create` at replication factor 3 and min.insync.replicas 2, the
services' bootstrap lists all three nodes, and the schedule SIGKILLs node 1, 2 and 3 in turn
among the service kills, one at a time: a killed node is started again and every partition is
back in sync (ISR = replicas) before the schedule goes on.

    python -m tests.chaos.run --seconds 240               # make chaos
    python -m tests.chaos.run --brokers 3                 # make chaos-cluster
    python -m tests.chaos.run --seconds 60 --reps 40      # the short run in make test
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.table import Table

from tests.e2e.scenario import ADMIN_KEY, SECRET, free_port, midday_timezone
from tests.integration.kafka.cluster import free_block

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy/local/kafka.sh"
console = Console(stderr=True)
app = typer.Typer(add_completion=False)

CLI = (sys.executable, "-m", "services.cli")

KILLS = ("ingest", "worker-1", "api", "broker", "worker-2", "worker-1", "worker-2")
"""What the schedule kills, in turn, spread evenly over the sending (one broker)."""

CLUSTER_KILLS = (
    "ingest",
    "broker-1",
    "worker-1",
    "api",
    "broker-2",
    "worker-2",
    "worker-1",
    "broker-3",
    "worker-2",
)
"""The same on a cluster: each node in turn, one at a time, among the service kills."""


@dataclass
class Service:
    """One OS process of the stack that can be SIGKILLed and started again."""

    name: str
    args: list[str]
    env: dict[str, str]
    ready: str | None
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    """Exit codes of the times it ended on its own (a fail-stop is 70), not by the schedule."""

    def start(self) -> None:
        self.starts += 1
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *self.args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.ready:
            _wait_http(self.ready, self)

    def kill(self) -> None:
        self.check()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def check(self) -> None:
        """Record an exit of its own (the schedule only restarts what it killed)."""
        if self.proc is not None and self.proc.returncode is None:
            code = self.proc.poll()
            if code is not None:
                self.exits.append(code)

    def stop(self) -> None:
        self.check()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Broker:
    """The Kafka of this run only (kafka.sh with its own folder and ports): one broker, or a
    KRaft cluster of `nodes` whose node i listens on port + 3(i-1)."""

    home: Path
    nodes: int = 1
    port: int = 0
    in_sync: list[float] = field(default_factory=list)
    """Seconds from each node's restart until every partition had all its replicas in sync."""

    def __post_init__(self) -> None:
        self.port = self.port or free_block(3 * self.nodes)

    @property
    def bootstrap(self) -> str:
        step = 3 if self.nodes > 1 else 0
        return ",".join(f"127.0.0.1:{self.port + step * i}" for i in range(self.nodes))

    def run(self, *command: str) -> None:
        env = {
            **os.environ,
            "CALLPULSE_KAFKA_PORT": str(self.port),
            "CALLPULSE_KAFKA_CONTROLLER_PORT": str(self.port + 1),
            "CALLPULSE_KAFKA_BROKERS": str(self.nodes),
            "CALLPULSE_KAFKA_DIR": str(self.home),
        }
        done = subprocess.run([str(KAFKA_SH), *command], env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"chaos: kafka.sh {' '.join(command)}: {done.stderr.decode()[-2000:]}")

    def kill(self, node: int = 1) -> None:
        self.run("kill", str(node))

    def restart(self) -> None:
        """Start what was killed; on a cluster, wait until no partition is under-replicated."""
        self.run("start")
        if self.nodes > 1:
            t0 = time.monotonic()
            asyncio.run(_await_in_sync(self.bootstrap, within=120))
            self.in_sync.append(time.monotonic() - t0)


async def _await_in_sync(bootstrap: str, within: float) -> None:
    """Until every partition of every topic has all its replicas in its ISR."""
    deadline = time.monotonic() + within
    lagging: list[str] = []
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            topics = await admin.describe_topics()
        except Exception:  # a cluster still electing: ask again
            topics = None
        finally:
            await admin.close()
        if topics is not None:
            lagging = [
                f"{t['topic']}/{p['partition']}"
                for t in topics
                for p in t["partitions"]
                if set(p["isr"]) != set(p["replicas"])
            ]
            if not lagging:
                return
        await asyncio.sleep(0.5)
    raise SystemExit(f"chaos: partitions still under-replicated after {within:.0f} s: {lagging}")


def _clock() -> str:
    """UTC wall time, to find a kill in the services' logs."""
    return datetime.now(UTC).strftime("%H:%M:%S")


def _flat(options: dict[str, str]) -> list[str]:
    return [part for pair in options.items() for part in pair]


def _wait_http(url: str, service: Service, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc is not None and service.proc.poll() is not None:
            raise SystemExit(f"chaos: {service.name} exited at start; see {service.log}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"chaos: {service.name} not ready at {url} after {timeout:.0f} s")


def _database_url() -> str:
    port = os.environ.get("CALLPULSE_PG_PORT", "15432")
    default = f"postgresql+asyncpg://callpulse:callpulse@127.0.0.1:{port}/callpulse_test"
    return os.environ.get("CALLPULSE_TEST_DATABASE_URL", default)


@app.command()
def main(
    seconds: Annotated[float, typer.Option(help="How long the simulator sends.")] = 240.0,
    rate: Annotated[float, typer.Option(help="Events per second.")] = 40.0,
    reps: Annotated[int, typer.Option(help="Reps on the simulated floor.")] = 300,
    dials: Annotated[float, typer.Option(help="A rep's dials per hour.")] = 360.0,
    seed: Annotated[int, typer.Option(help="Seed of the floor.")] = 7,
    settle: Annotated[float, typer.Option(help="Seconds allowed to converge after.")] = 180.0,
    workdir: Annotated[Path | None, typer.Option(help="Logs and data (default: temp).")] = None,
    brokers: Annotated[
        int, typer.Option(min=1, help="1, or a cluster (replication 3, min.insync 2).")
    ] = 1,
    kafka_port: Annotated[
        int, typer.Option(help="First Kafka port (a node takes 3); 0: free ones.")
    ] = 0,
) -> None:
    """Run the chaos scenario; exit 1 unless the KPIs match the truth exactly."""
    work = workdir or Path(tempfile.mkdtemp(prefix="callpulse-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    run = f"chaos{uuid.uuid4().hex[:6]}"
    kills = KILLS if brokers == 1 else CLUSTER_KILLS
    broker = Broker(work / "kafka", brokers, kafka_port)
    console.print(f"chaos run {run}: logs in {work}, Kafka {broker.bootstrap}")
    broker.run("start")
    ingest_port, api_port = free_port(), free_port()
    tz = midday_timezone(datetime.now(UTC))
    env = {
        "CALLPULSE_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CALLPULSE_DATABASE_URL": _database_url(),
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_TIMEZONE": tz,
        "CALLPULSE_APP_ID": f"{run}-aggregator",
        "CALLPULSE_CONSUMER_GROUP_PREFIX": run,
        "CALLPULSE_CREATE_TOPICS": "true",
        "CALLPULSE_SESSION_TIMEOUT_SECONDS": "10",
        **{
            f"CALLPULSE_{name}_TOPIC": f"{run}.{name.lower()}"
            for name in ("EVENTS", "FACTS", "KPIS", "CALLS", "ALERTS", "ROSTER", "DEAD_LETTERS")
        },
    }
    if brokers > 1:  # as in production: topics made up front, replicated; services check them
        env |= {
            "CALLPULSE_REPLICATION_FACTOR": str(min(brokers, 3)),
            "CALLPULSE_MIN_INSYNC_REPLICAS": "2",
            "CALLPULSE_CREATE_TOPICS": "false",
        }
    ingest_url, api_url = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
    services = {
        "ingest": Service(
            "ingest",
            ["services.cli", "ingest", "--port", str(ingest_port)],
            env,
            f"{ingest_url}/readyz",
            work / "ingest.log",
        ),
        "api": Service(
            "api",
            ["services.cli", "api", "--port", str(api_port)],
            env,
            f"{api_url}/healthz",
            work / "api.log",
        ),
    }
    for n in (1, 2):
        web = free_port()
        services[f"worker-{n}"] = Service(
            f"worker-{n}",
            ["services.cli", "aggregator", "--loglevel", "warning"],
            {**env, "CALLPULSE_WEB_PORT": str(web), "CALLPULSE_DATA_DIR": str(work / f"w{n}")},
            f"http://127.0.0.1:{web}/healthz",
            work / f"worker-{n}.log",
        )
    truth = work / "truth.json"
    simulator: subprocess.Popen[bytes] | None = None
    try:
        if brokers > 1:
            _create_topics(env, work / "topics.log")
        for service in services.values():
            service.start()
        options = {
            "--url": ingest_url,
            "--api-url": api_url,
            "--key": ADMIN_KEY,
            "--secret": SECRET,
            "--seed": str(seed),
            "--reps": str(reps),
            "--teams": "2",
            "--timezone": tz,
            "--minutes": "0",
            "--duration": str(seconds),
            "--rate": str(rate),
            "--dials-per-hour": str(dials),
            "--duplicates": "0.05",
            "--reorder": "0.05",
            "--id-prefix": f"{run}-",
            "--run-id": run,
            "--attempts": "40",
            "--timeout": "10",
            "--truth-out": str(truth),
        }
        simulator = subprocess.Popen(
            [*CLI, "simulate", "--all-day", "--live", *_flat(options)],
            cwd=ROOT,
            stdout=(work / "simulate.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        began = time.monotonic()
        for i, target in enumerate(kills):
            time.sleep(max(0.0, began + seconds * (i + 1) / (len(kills) + 1) - time.monotonic()))
            console.print(f"{_clock()} {time.monotonic() - began:6.1f} s  SIGKILL {target}")
            if target.startswith("broker"):
                broker.kill(int(target.partition("-")[2] or 1))
                time.sleep(3)
                broker.restart()
                console.print(f"{_clock()} {time.monotonic() - began:6.1f} s  {target} back")
            else:
                services[target].kill()
                time.sleep(2)
                services[target].start()
        sent_by = began + seconds
        code = simulator.wait(timeout=seconds + 600)
        last_event = time.monotonic()
        report = (work / "simulate.log").read_text(errors="replace")
        if code != 0 or not truth.exists():
            console.print(report[-2000:])
            raise SystemExit(f"chaos: the simulator failed (exit {code})")
        checks = {"--truth": str(truth), "--url": api_url, "--key": ADMIN_KEY}
        checks |= {"--wait": str(settle), "--rows": "10"}
        verify = subprocess.run(
            [*CLI, "verify", *_flat(checks)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        converged = time.monotonic() - last_event
        for service in services.values():
            service.check()
        _summary(
            run, report, verify, converged, max(0.0, last_event - sent_by), services, broker, kills
        )
        if verify.returncode != 0 or "gave up" in report:
            raise SystemExit(1)
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
        for service in services.values():
            service.stop()
        broker.run("stop")


def _create_topics(env: dict[str, str], log: Path) -> None:
    """`callpulse topics create` with the run's settings (replication, min.insync.replicas)."""
    done = subprocess.run(
        [*CLI, "topics", "create"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"chaos: callpulse topics create failed: {done.stderr[-2000:]}")


def _summary(
    run: str,
    report: str,
    verify: subprocess.CompletedProcess[str],
    converged: float,
    drained: float,
    services: dict[str, Service],
    broker: Broker,
    kills: tuple[str, ...],
) -> None:
    sent = re.search(r"sent (\d+) events \((\d+) unique.*?(\d+) retries", report, re.S)
    gave_up = "gave up" in report
    # Each is a 503 the sender had to retry: Kafka did not take a batch in time.
    refused = len(re.findall(r"publish_(?:failed|timeout)", services["ingest"].log.read_text()))
    table = Table(title=f"chaos {run}", show_header=False)
    table.add_row("Kafka", f"{broker.nodes} broker(s) at {broker.bootstrap}")
    table.add_row("events sent (unique)", f"{sent[1]} ({sent[2]})" if sent else "?")
    table.add_row("retries", sent[3] if sent else "?")
    table.add_row("ingest publish failures (503)", str(refused))
    table.add_row("events given up", "some (see simulate.log)" if gave_up else "0")
    table.add_row("kills", ", ".join(kills))
    table.add_row("starts", ", ".join(f"{s.name} {s.starts}" for s in services.values()))
    alone = {s.name: s.exits for s in services.values() if s.exits}
    table.add_row("exits not by the schedule", json.dumps(alone) if alone else "none")
    if broker.in_sync:
        table.add_row(
            "node restart to all in sync", ", ".join(f"{s:.1f} s" for s in broker.in_sync)
        )
    table.add_row("simulator finished after the plan", f"{drained:.1f} s")
    table.add_row("last event to verify's verdict", f"{converged:.1f} s")
    table.add_row("verdict", verify.stdout.strip().splitlines()[-1] if verify.stdout else "?")
    Console(width=120).print(table)
    if verify.returncode != 0:
        console.print(verify.stdout[-4000:], verify.stderr[-2000:])
    (Path(services["ingest"].log).parent / "summary.json").write_text(
        json.dumps(
            {
                "run": run,
                "brokers": broker.nodes,
                "kills": list(kills),
                "events": int(sent[1]) if sent else None,
                "unique": int(sent[2]) if sent else None,
                "retries": int(sent[3]) if sent else None,
                "gave_up": gave_up,
                "publish_failures": refused,
                "exits_not_by_the_schedule": alone,
                "in_sync_seconds": [round(s, 1) for s in broker.in_sync],
                "converged_seconds": round(converged, 1),
                "exact": verify.returncode == 0,
            }
        )
    )


if __name__ == "__main__":
    app()
