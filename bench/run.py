"""Run the benchmark suite: `python -m bench.run [--quick] [--only NAME]`.

Each scenario measures a figure and a baseline in the same run; the table goes to
bench/results/<date>.json and .md and to the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.scenarios import (
    aggregator,
    api,
    coaching,
    competitions,
    e2e,
    embedded,
    failover,
    ingest,
    restart,
    sse,
)
from bench.support import ROOT, Context, Row, console, export_tree, pin_self, skipped

Scenario = Callable[[Context], list[Row]]

# name -> (run, the rows' targets when it cannot run); in priority order
SCENARIOS: dict[str, tuple[Scenario, list[tuple[str, str]]]] = {
    "aggregator": (
        aggregator.run,
        [
            ("aggregator, 1 Faust worker (events/s)", ">= 0.7 x the Faust no-op agent"),
            ("aggregator RSS, 10,000 reps", "<= 1 GiB"),
        ],
    ),
    "ingest": (
        ingest.run,
        [
            ("ingest, single events, durable ack", ">= 0.6 x bare endpoint"),
            ("ingest, batches of 1,000", ">= 50,000 events/s"),
        ],
    ),
    "api": (
        api.run,
        [
            ("API wallboard, 200 reps", "p99 <= 10 ms at 1,000 req/s"),
            ("API /metrics, 10,000 reps", "<= 250 ms"),
        ],
    ),
    "e2e": (e2e.run, [("end to end at 500 events/s", "p99 <= 500 ms")]),
    "embedded": (embedded.run, [("embedded mode, NDJSON batches", "— (no target)")]),
    "sse": (sse.run, [("SSE fan-out to 500 clients (CPU per update)", sse.TARGET)]),
    "competitions": (
        competitions.run,
        [("competition standings, 10,000 reps", "p99 <= 20 ms at 200 req/s")],
    ),
    "coaching": (
        coaching.run,
        [
            ("coaching team scorecard, 200 reps", "p99 <= 50 ms"),
            ("coaching heatmap, 8 weeks", "p99 <= 50 ms"),
        ],
    ),
    "restart": (restart.run, [("embedded restart, 2,000,000-event log", "ready <= 10 s")]),
    "failover": (
        failover.run,
        [
            ("aggregator failover (SIGKILL), 10,000 reps + a month", "<= 15 s"),
            ("aggregator restart on the same host, 10,000 reps + a month", "ready <= 15 s"),
            ("aggregator peak RSS in failover, 10,000 reps + a month", "<= 1 GiB"),
        ],
    ),
}

RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the chosen scenarios, write and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="repeatable")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy: sample the aggregator while it drains and the API under wrk",
    )
    parser.add_argument(
        "--tree",
        metavar="REV",
        help="run the services from a clean export of this commit instead of the working tree",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=15 * 60,
        help="seconds; scenarios not started within it are skipped (default 900)",
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("CALLPULSE_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        help="Kafka bootstrap servers",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        console.print("[red]wrk is missing: apt-get install wrk (make infra installs it)")
        return 2
    pin_self()
    began = time.monotonic()
    rows: list[Row] = []
    chosen = args.only or list(SCENARIOS)
    tree: str | None = None
    with tempfile.TemporaryDirectory(prefix="callpulse-bench-") as tmp:
        ctx = Context(
            bootstrap=args.bootstrap, workdir=Path(tmp), quick=args.quick, profile=args.profile
        )
        if args.tree:
            tree = _git("rev-parse", args.tree)
            ctx.source = export_tree(tree, Path(tmp) / "tree")
            console.print(f"services run from a clean export of {args.tree} ({tree[:10]})")
        for name in chosen:
            scenario, targets = SCENARIOS[name]
            elapsed = time.monotonic() - began
            if elapsed > args.budget:
                rows += [skipped(s, t, "time budget spent") for s, t in targets]
                continue
            console.rule(f"[bold]{name}[/]  ({elapsed:.0f} s elapsed)")
            try:
                got = scenario(ctx)
                _note_load(got)
                rows += got
            except Exception as exc:  # one broken scenario must not lose the others' numbers
                console.print(traceback.format_exc(), style="red", markup=False, highlight=False)
                rows += [skipped(s, t, f"{type(exc).__name__}: {exc}") for s, t in targets]
                _keep_logs(ctx.workdir, name)
    total = time.monotonic() - began
    stamp = datetime.now(UTC)
    complete = not args.quick and not args.only
    write(rows, stamp, total, quick=args.quick, complete=complete, tree=tree)
    console.print(_table(rows))
    name = f"{stamp:%Y-%m-%d}" + ("" if complete else "-partial")
    console.print(f"total {total:.0f} s; written to {RESULTS}/{name}.{{json,md}}")
    return 0


def _note_load(rows: list[Row]) -> None:
    """Other work on the machine skews every figure: record the load next to each row."""
    load = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    for row in rows:
        row.raw["loadavg_1m"] = load
        row.notes += f"; 1-min load avg {load:.1f} on {cpus} CPUs at the end"
    if load > cpus:
        console.print(f"[yellow]load average {load:.1f} > {cpus} CPUs: other work skews this")


def _keep_logs(workdir: Path, name: str) -> None:
    target = RESULTS / "logs" / name
    target.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, target / log.name)
    console.print(f"[yellow]service logs kept in {target}")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _git_state() -> dict[str, Any]:
    """HEAD and the files that differ from it now (others may be editing the working tree)."""
    dirty = [line[3:] for line in _git("status", "--porcelain").splitlines()]
    return {"head": _git("rev-parse", "HEAD"), "modified": dirty}


def _fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _fmt_met(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def write(
    rows: list[Row],
    stamp: datetime,
    seconds: float,
    *,
    quick: bool,
    complete: bool,
    tree: str | None,
) -> None:
    """bench/results/<date>.json and .md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    git = _git_state()
    meta = {
        "date": stamp.isoformat(),
        "quick": quick,
        "seconds": round(seconds, 1),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "git": git,
        "loadavg_at_end": os.getloadavg(),
        "services_from": f"clean export of commit {tree[:10]}" if tree else "working tree",
    }
    # a partial or --quick run must not overwrite the day's full results
    day = f"{stamp:%Y-%m-%d}" + ("" if complete else "-partial")
    (RESULTS / f"{day}.json").write_text(
        json.dumps({"meta": meta, "rows": [r.to_dict() for r in rows]}, indent=2) + "\n"
    )
    lines = [
        f"# callpulse benchmarks, {stamp:%Y-%m-%d %H:%M} UTC" + (" (--quick)" if quick else ""),
        "",
        f"{meta['cpus']} CPUs, Python {meta['python']}, {meta['machine']}; "
        f"run took {seconds:.0f} s; services ran from the {meta['services_from']} "
        f"(HEAD at the end: {git['head'][:10]}, {len(git['modified'])} modified or untracked "
        "paths, listed in the JSON).",
        "",
        "| scenario | figure | baseline | ratio | target | met? | cores each side | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r.scenario,
            r.figure,
            r.baseline,
            _fmt_ratio(r.ratio),
            r.target,
            _fmt_met(r.met),
            r.cores,
            r.notes,
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    (RESULTS / f"{day}.md").write_text("\n".join(lines) + "\n")


def _table(rows: list[Row]) -> Table:
    table = Table(title="callpulse benchmarks", show_lines=True)
    for column in ("scenario", "figure", "baseline", "ratio", "target", "met?", "cores"):
        table.add_column(column, overflow="fold")
    for r in rows:
        met = "—" if r.met is None else ("[green]yes" if r.met else "[red]no")
        table.add_row(r.scenario, r.figure, r.baseline, _fmt_ratio(r.ratio), r.target, met, r.cores)
    return table


if __name__ == "__main__":
    sys.exit(main())
