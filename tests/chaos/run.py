"""`make chaos`: the distributed stack under kills, against the simulator's truth.

Its own Kafka broker (so the broker can be killed without touching anyone else's), the
PostgreSQL of `make infra`, then ingest, the API and two aggregator workers as OS processes.
The simulator sends a live floor, signed and retrying, at a steady rate while the schedule
SIGKILLs and restarts, in turn: ingest, worker 1, the API, the broker, worker 2, worker 1 and
worker 2 again. Then `callpulse verify` compares every rep's KPIs with the simulator's ground
truth of the events ingest accepted, exactly. Exit 0 only on an exact match with no event
given up; the summary says how many events were sent, retried, and how long after the last
event the numbers were exact.

    python -m tests.chaos.run --seconds 240               # make chaos
    python -m tests.chaos.run --seconds 60 --reps 40      # the short run in make test
"""

from __future__ import annotations

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
from rich.console import Console
from rich.table import Table

from tests.e2e.scenario import ADMIN_KEY, SECRET, free_port, midday_timezone

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy/local/kafka.sh"
console = Console(stderr=True)
app = typer.Typer(add_completion=False)

CLI = (sys.executable, "-m", "services.cli")

KILLS = ("ingest", "worker-1", "api", "broker", "worker-2", "worker-1", "worker-2")
"""What the schedule kills, in turn, spread evenly over the sending."""


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
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Broker:
    """A Kafka broker of this run only (kafka.sh with its own folder and ports)."""

    home: Path
    port: int = field(default_factory=free_port)
    controller: int = field(default_factory=free_port)

    def run(self, *command: str) -> None:
        env = {
            **os.environ,
            "CALLPULSE_KAFKA_PORT": str(self.port),
            "CALLPULSE_KAFKA_CONTROLLER_PORT": str(self.controller),
            "CALLPULSE_KAFKA_DIR": str(self.home),
        }
        subprocess.run([str(KAFKA_SH), *command], env=env, check=True, capture_output=True)

    def kill(self) -> None:
        self.run("kill", "1")


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
) -> None:
    """Run the chaos scenario; exit 1 unless the KPIs match the truth exactly."""
    work = workdir or Path(tempfile.mkdtemp(prefix="callpulse-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    run = f"chaos{uuid.uuid4().hex[:6]}"
    broker = Broker(work / "kafka")
    console.print(f"chaos run {run}: logs in {work}")
    broker.run("start")
    ingest_port, api_port = free_port(), free_port()
    tz = midday_timezone(datetime.now(UTC))
    env = {
        "CALLPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker.port}",
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
        for i, target in enumerate(KILLS):
            time.sleep(max(0.0, began + seconds * (i + 1) / (len(KILLS) + 1) - time.monotonic()))
            console.print(f"{time.monotonic() - began:6.1f} s  SIGKILL {target}")
            if target == "broker":
                broker.kill()
                time.sleep(3)
                broker.run("start")
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
        _summary(run, report, verify, converged, max(0.0, last_event - sent_by), services)
        if verify.returncode != 0 or "gave up" in report:
            raise SystemExit(1)
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
        for service in services.values():
            service.stop()
        broker.run("stop")


def _summary(
    run: str,
    report: str,
    verify: subprocess.CompletedProcess[str],
    converged: float,
    drained: float,
    services: dict[str, Service],
) -> None:
    sent = re.search(r"sent (\d+) events \((\d+) unique.*?(\d+) retries", report, re.S)
    gave_up = "gave up" in report
    table = Table(title=f"chaos {run}", show_header=False)
    table.add_row("events sent (unique)", f"{sent[1]} ({sent[2]})" if sent else "?")
    table.add_row("retries", sent[3] if sent else "?")
    table.add_row("events given up", "some (see simulate.log)" if gave_up else "0")
    table.add_row("kills", ", ".join(KILLS))
    table.add_row("starts", ", ".join(f"{s.name} {s.starts}" for s in services.values()))
    table.add_row("simulator finished after the plan", f"{drained:.1f} s")
    table.add_row("last event to verify's verdict", f"{converged:.1f} s")
    table.add_row("verdict", verify.stdout.strip().splitlines()[-1] if verify.stdout else "?")
    Console().print(table)
    if verify.returncode != 0:
        console.print(verify.stdout[-4000:], verify.stderr[-2000:])
    (Path(services["ingest"].log).parent / "summary.json").write_text(
        json.dumps(
            {
                "run": run,
                "events": int(sent[1]) if sent else None,
                "unique": int(sent[2]) if sent else None,
                "retries": int(sent[3]) if sent else None,
                "gave_up": gave_up,
                "converged_seconds": round(converged, 1),
                "exact": verify.returncode == 0,
            }
        )
    )


if __name__ == "__main__":
    app()
