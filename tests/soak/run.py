"""`make soak`: randomised runs of the two-worker SIGKILL scenario, with its variants.

One Kafka broker of the soak's own (its folder and ports; started once, restarted by the
"broker" variant), fresh topics and consumer group per run. Each run starts two workers with
the offset-coverage hook, sends a seeded floor (20 % duplicates, shuffled) in chunks, and
injects its variant's fault while the events arrive:

- sigkill: SIGKILL a worker, restart it;
- kill-in-recovery: restart a killed worker, then SIGKILL the other while both recover;
- scale: a third worker joins, then the first leaves (SIGTERM);
- sigstop: SIGSTOP a worker past the session timeout, then SIGCONT (it finds its partitions
  moved);
- broker: SIGKILL the broker, start it again;
- poison: undecodable events and a facts pack (dead-lettered), and a marker that raises once
  in each stage (the fail-stop path: the supervisor here restarts the worker).

Half the runs also widen the recovery race (`CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS`). Each run
records lost offsets (coverage oracle), over-commits, double and missing counts against the
reference fold, the longest held commit, and the time from the last event and fault to exact
KPIs with complete coverage; a failed run keeps its topics on the soak's broker (`topics_kept`
in its record) and its workers' logs in the work folder. `--disable-fixes` runs Faust as shipped
(`CALLPULSE_TEST_DISABLE_FIXES=1`) to show that the soak finds the failures.

    python -m tests.soak.run --runs 60                       # make soak
    python -m tests.soak.run --runs 15 --disable-fixes       # the control
    python -m tests.soak.run --runs 8 --variant sigstop      # one variant
    python -m tests.soak.run --runs 30 --store memory        # the tables in memory
    python -m tests.soak.run --runs 4 --variant broker --run-seed 342671823  # replay a run
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tests.e2e.scenario import midday_timezone
from tests.integration.aggregator.test_workers import floor_log
from tests.soak.scenario import Run, stream_of

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy/local/kafka.sh"
RESULTS = ROOT / "tests/soak/results"
VARIANTS = ("sigkill", "kill-in-recovery", "scale", "sigstop", "broker", "poison")
SESSION_TIMEOUT = 6.0
console = Console(stderr=True)
app = typer.Typer(add_completion=False)


class Broker:
    """The soak's Kafka broker (kafka.sh with its own folder and ports)."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.bootstrap = f"127.0.0.1:{port}"

    def run(self, *command: str) -> None:
        env = {
            **os.environ,
            "CALLPULSE_KAFKA_PORT": str(self.port),
            "CALLPULSE_KAFKA_CONTROLLER_PORT": str(self.port + 1),
            "CALLPULSE_KAFKA_DIR": str(self.home),
        }
        subprocess.run([str(KAFKA_SH), *command], env=env, check=True, capture_output=True)

    def start(self) -> None:
        """Start it (kafka.sh gives up after its own wait, which a loaded machine can pass)."""
        for attempt in range(3):
            try:
                self.run("start")
                return
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                time.sleep(3)

    def restart(self, down: float) -> None:
        self.run("kill", "1")
        time.sleep(down)
        self.start()


def one_run(
    n: int, variant: str, broker: Broker, work: Path, *, fixes: bool, settle: float, seed: int
) -> dict[str, Any]:
    """One randomised run of `variant`; its measurements."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    widen = rng.choice([0, 1500])
    env = {"CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS": str(widen)} if widen else {}
    if not fixes:
        env["CALLPULSE_TEST_DISABLE_FIXES"] = "1"
    events = floor_log(seed=seed, now=now, reps=30, calls=1500)
    items = stream_of(events, rng)
    if variant == "poison":
        stage1, stage2 = work / "stage1-raised", work / "stage2-raised"
        env["CALLPULSE_TEST_RAISE_ONCE_STAGE1"] = f'"c{rng.randrange(1500)}":{stage1}'
        env["CALLPULSE_TEST_RAISE_ONCE_STAGE2"] = f'"c{rng.randrange(1500)}":{stage2}'
    began = time.monotonic()
    fault_at = rng.uniform(2, 6)
    record: dict[str, Any] = {"run": n, "variant": variant, "seed": seed}
    record |= {"widen_ms": widen, "fixes": fixes, "fault_at": round(fault_at, 1)}
    try:
        timezone = midday_timezone(now)
        run = Run(broker.bootstrap, work, timezone, env=env, session_timeout=SESSION_TIMEOUT)
    except Exception as error:  # the broker is down: the run fails, the soak goes on
        broker.start()
        return record | {"converged": False, "error": f"{type(error).__name__}: {error}"}
    record["id"] = run.id
    try:
        run.start("a", wait=False)
        run.start("b")
        run.wait_healthy(run.workers["a"])
        sender = run.stream(items, chunks=20, seconds=10)
        time.sleep(fault_at)
        fault(variant, run, broker, rng)
        sender.join()
        last = time.monotonic()
        record["fault_seconds"] = round(last - began, 1)
        record |= run.converge(events, timeout=settle)
        record["held_commit_max"] = run.held_max
        record["restarts"] = run.restarts
        record["exits"] = {w.name: w.exits for w in run.workers.values() if w.exits}
        record["widened"] = run.fired("test_widening_recovery_race")
        record["seconds"] = round(time.monotonic() - began, 1)
    except Exception as error:  # a run that breaks is a failed run, with the reason
        record |= {"converged": False, "error": f"{type(error).__name__}: {error}"}
    finally:
        run.close()
        if record.get("converged"):
            drop_topics(broker.bootstrap, run.id)
        else:  # kept for the post-mortem: the changelogs say which worker wrote what, when
            record["topics_kept"] = run.id
    return record


def fault(variant: str, run: Run, broker: Broker, rng: random.Random) -> None:
    """Inject the variant's fault while the events arrive."""
    if variant == "sigkill":
        run.kill("b")
        time.sleep(rng.uniform(0.5, 3))
        run.start("b", wait=False)
    elif variant == "kill-in-recovery":
        run.kill("b")
        time.sleep(rng.uniform(0.5, 2))
        run.start("b")
        time.sleep(rng.uniform(0.5, 3))  # both workers rebalance and recover
        run.kill("a")
        time.sleep(rng.uniform(0.5, 2))
        run.start("a", wait=False)
    elif variant == "scale":
        run.start("c")
        time.sleep(rng.uniform(2, 5))
        run.kill("a", signal.SIGTERM)
    elif variant == "sigstop":
        run.kill("b", signal.SIGSTOP)
        time.sleep(SESSION_TIMEOUT + rng.uniform(1, 4))
        run.kill("b", signal.SIGCONT)
    elif variant == "broker":
        broker.restart(rng.uniform(1, 4))
    elif variant == "poison":
        run.send([(b"p1", b"{not json"), (b"p2", b'{"type": "call.started"}')])
        run.send([(b"r1", b"\x00not a facts pack")], topic="facts")


def drop_topics(bootstrap: str, prefix: str) -> None:
    """Delete a finished run's topics (its own and its workers' changelogs)."""

    async def drop() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    try:
        asyncio.run(drop())
    except Exception as error:  # best effort: topic names are unique per run anyway
        console.print(f"[yellow]could not delete {prefix}'s topics: {error}[/]")


def summary(records: list[dict[str, Any]], fixes: bool) -> dict[str, Any]:
    converge = sorted(r["converge_seconds"] for r in records if r.get("converge_seconds"))
    return {
        "fixes": fixes,
        # Faust as shipped (the control) has no RocksStore: its workers run on memory
        "store": os.environ.get("CALLPULSE_AGGREGATOR_STORE", "rocksdb") if fixes else "memory",
        "runs": len(records),
        "variants": dict(Counter(r["variant"] for r in records)),
        "widened_runs": sum(1 for r in records if r.get("widen_ms")),
        "failed_runs": sum(1 for r in records if not r.get("converged")),
        "runs_with_lost_offsets": sum(1 for r in records if r.get("lost_offsets")),
        "lost_offsets": sum(r.get("lost_offsets", 0) for r in records),
        "over_commits": sum(r.get("over_commits", 0) for r in records),
        "runs_with_double_counts": sum(1 for r in records if r.get("double_counts")),
        "double_counts": sum(r.get("double_counts", 0) for r in records),
        "missing_counts": sum(r.get("missing_counts", 0) for r in records),
        "errors": sum(1 for r in records if r.get("error")),
        "held_commit_max": max((r.get("held_commit_max", 0.0) for r in records), default=0.0),
        "converge_p50": statistics.median(converge) if converge else None,
        "converge_max": max(converge, default=None),
    }


def show(total: dict[str, Any]) -> None:
    table = Table(title="soak " + ("with the fixes" if total["fixes"] else "fixes DISABLED"))
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in total.items():
        if key != "fixes":
            shown = (
                ", ".join(f"{k} {v}" for k, v in value.items())
                if isinstance(value, dict)
                else value
            )
            table.add_row(key.replace("_", " "), str(shown))
    console.print(table)


@app.command()
def main(
    runs: Annotated[int, typer.Option(help="How many runs.")] = 60,
    disable_fixes: Annotated[bool, typer.Option(help="Faust as shipped (the control).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the run plan.")] = 12,
    settle: Annotated[float, typer.Option(help="Seconds a run may take to converge.")] = 45.0,
    kafka_port: Annotated[int, typer.Option(help="The soak broker's port (+1: controller).")] = int(
        os.environ.get("CALLPULSE_SOAK_KAFKA_PORT", "19192")
    ),
    kafka_dir: Annotated[Path | None, typer.Option(help="The soak broker's folder.")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Logs and data (default: temp).")] = None,
    out: Annotated[Path | None, typer.Option(help="JSON results file.")] = None,
    variant: Annotated[
        list[str] | None, typer.Option(help=f"Only these variants (repeat), of {VARIANTS}.")
    ] = None,
    store: Annotated[
        str, typer.Option(help="The workers' table store: rocksdb (the default) or memory.")
    ] = "rocksdb",
    run_seed: Annotated[
        list[int] | None,
        typer.Option(help="Replay runs by their recorded seed (repeat; cycled over the runs)."),
    ] = None,
) -> None:
    """Run the soak; exit 1 on any lost offset, double count or run that did not converge."""
    fixes = not disable_fixes
    if store not in ("memory", "rocksdb"):
        raise typer.BadParameter(f"unknown store {store!r}: memory or rocksdb")
    os.environ["CALLPULSE_AGGREGATOR_STORE"] = store  # the workers inherit it
    chosen = tuple(variant or VARIANTS)
    if unknown := set(chosen) - set(VARIANTS):
        raise typer.BadParameter(f"unknown variants {sorted(unknown)}; known: {VARIANTS}")
    work = workdir or Path(tempfile.mkdtemp(prefix="callpulse-soak-"))
    broker = Broker(kafka_dir or ROOT / ".cache/kafka-soak", kafka_port)
    broker.start()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = out or RESULTS / f"{stamp}-{'fixes' if fixes else 'disabled'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    plan = random.Random(seed)
    console.print(f"soak: {runs} runs, fixes {'on' if fixes else 'DISABLED'}; logs in {work}")
    records: list[dict[str, Any]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("runs", total=runs)
        for n in range(runs):
            kind = chosen[n % len(chosen)]
            seed_of_run = plan.randrange(1 << 30) if not run_seed else run_seed[n % len(run_seed)]
            progress.update(task, description=f"run {n + 1} {kind}")
            record = one_run(
                n, kind, broker, work / f"run{n:03d}", fixes=fixes, settle=settle, seed=seed_of_run
            )
            records.append(record)
            mark = "ok" if record.get("converged") else "[red]FAIL[/]"
            console.print(
                f"{n + 1:3d} {kind:17s} widen {record.get('widen_ms', 0):4d} {mark} "
                f"lost {record.get('lost_offsets', '-')} double {record.get('double_counts', '-')} "
                f"missing {record.get('missing_counts', '-')} "
                f"over {record.get('over_commits', '-')} held {record.get('held_commit_max', 0)} "
                f"converge {record.get('converge_seconds')} s {record.get('error', '')}"
            )
            out.write_text(
                json.dumps({"summary": summary(records, fixes), "runs": records}, indent=1)
            )
            progress.advance(task)
    total = summary(records, fixes)
    show(total)
    console.print(f"results: {out}")
    bad = total["lost_offsets"] or total["double_counts"] or total["failed_runs"]
    raise typer.Exit(1 if bad else 0)


if __name__ == "__main__":
    app()
