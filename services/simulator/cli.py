"""`callpulse simulate` and `callpulse verify`: typer-compatible commands for the main CLI."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from schemas.events import CallEvent
from schemas.kpis import WINDOWS
from services.simulator.faults import Faults, inject
from services.simulator.floor import FloorConfig, generate, rep_timezones, stream
from services.simulator.roster import register
from services.simulator.sender import (
    SIGNING_HINT,
    Delivery,
    RetryPolicy,
    Sender,
    SendReport,
    batched,
    send_all,
    send_live,
)
from services.simulator.truth import ground_truth, read_truth, write_log, write_truth
from services.simulator.verify import AccessDenied, check, render
from services.standalone.datadir import DATA_DIR_ENV, DEFAULT_DATA_DIR, SECRET_ENV, webhook_secret

KEY_ENV = ["CALLPULSE_API_KEY", "CALLPULSE_BOOTSTRAP_ADMIN_KEY"]
DEFAULT_URL = "http://127.0.0.1:8000"
console = Console(stderr=True)


@contextlib.contextmanager
def _progress(total: int | None, what: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar when interactive; a no-op otherwise."""
    if not console.is_terminal:
        yield lambda _: None
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _summary(report: SendReport, generated: int, sent: int) -> None:
    console.print(
        f"sent {report.events} events ({generated} unique, {sent - generated} extra copies) "
        f"in {report.batches} requests; {report.retries} retries; "
        f"{len(report.failures)} requests given up"
    )
    for first_id, count, detail in report.failures[:10]:
        console.print(f"[red]gave up[/red] {count} events from {first_id}: {detail}")


def simulate(
    url: Annotated[str, typer.Option(help="Base URL of the ingest.")] = DEFAULT_URL,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar=SECRET_ENV,
            help="whsec_ secret to sign with [default: the embedded one in --data-dir].",
        ),
    ] = None,
    data_dir: Annotated[
        Path,
        typer.Option(
            envvar=DATA_DIR_ENV,
            help="`callpulse run`'s folder: its webhook secret signs when --secret is not given.",
        ),
    ] = Path(DEFAULT_DATA_DIR),
    key: Annotated[
        str | None,
        typer.Option(envvar=KEY_ENV, help="Admin key: register teams (zones, shifts) and reps."),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option(help="API base URL for --key (default: --url).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the floor and of the faults.")] = 1,
    reps: Annotated[int, typer.Option(min=0)] = 20,
    teams: Annotated[int, typer.Option(min=1)] = 2,
    minutes: Annotated[
        float, typer.Option(min=0, help="Span of simulated history ending now.")
    ] = 60.0,
    live: Annotated[
        bool, typer.Option(help="After the history, stream in real time until Ctrl-C.")
    ] = False,
    duration: Annotated[
        float, typer.Option(min=0, help="--live: stop after this many seconds (0: never).")
    ] = 0.0,
    rate: Annotated[float, typer.Option(min=0, help="Events/s (0: as fast as possible).")] = 0.0,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Events per request.")] = 100,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    duplicates: Annotated[float, typer.Option(min=0, max=1, help="Share re-sent.")] = 0.0,
    reorder: Annotated[float, typer.Option(min=0, max=1, help="Share swapped.")] = 0.0,
    late: Annotated[float, typer.Option(min=0, max=1, help="Share sent 1-10 min late.")] = 0.0,
    timezone: Annotated[
        list[str] | None, typer.Option(help="Team time zone, repeatable (cycled over teams).")
    ] = None,
    all_day: Annotated[bool, typer.Option(help="No shifts: reps work around the clock.")] = False,
    dials_per_hour: Annotated[float, typer.Option(min=0.1, help="A rep's dial pace.")] = 40.0,
    run_id: Annotated[
        str | None, typer.Option(help="Prefix of call ids (default: sim<seed>-<time>).")
    ] = None,
    id_prefix: Annotated[
        str, typer.Option(help="Before team and rep ids: keeps runs on one server apart.")
    ] = "",
    log_out: Annotated[Path | None, typer.Option(help="Write the events as sent (NDJSON).")] = None,
    truth_out: Annotated[
        Path | None, typer.Option(help="Write the ground truth: rep -> window -> KPIs (JSON).")
    ] = None,
    attempts: Annotated[int, typer.Option(min=1, help="Attempts per request.")] = 8,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per attempt.")] = 10.0,
) -> None:
    """Simulate a telesales floor and post its call events to a running ingest."""
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(minutes=minutes)
    defaults = FloorConfig()
    try:
        config = FloorConfig(
            seed=seed,
            reps=reps,
            teams=teams,
            run_id=run_id or f"sim{seed}-{end:%Y%m%dT%H%M%S}",
            id_prefix=id_prefix,
            timezones=tuple(timezone) if timezone else defaults.timezones,
            shift=None if all_day else defaults.shift,
            dials_per_hour=dials_per_hour,
        )
    except (ValueError, KeyError) as exc:  # KeyError: an unknown time zone
        raise typer.BadParameter(str(exc)) from exc
    faults = Faults(duplicates=duplicates, reorder=reorder, late=late, seed=seed)
    policy = RetryPolicy(attempts=attempts, timeout=timeout)
    run = _Run(config, faults, policy, url, secret or webhook_secret(data_dir), concurrency)
    if key is not None:
        asyncio.run(_register(api_url or url, key, config))
    elif len(set(config.timezones[: config.teams])) > 1:
        console.print(
            "[yellow]note[/yellow]: teams are not registered (no --key), so the server uses its "
            "default time zone; calendar windows may differ from the truth"
        )
    if live:
        sent, report, end = asyncio.run(run.live(start, batch, duration))
    else:
        sent, report = asyncio.run(run.history(start, end, batch, rate or None))
    unique = len({event.event_id for event in sent})
    if not sent:
        console.print(
            "[red]no events sent[/red]: every team is off shift in that span (shifts are "
            f"{_shift_text(config)} in each team's time zone); add --all-day to simulate "
            "around the clock"
        )
        raise typer.Exit(1)
    _summary(report, unique, len(sent))
    if any(detail.startswith("HTTP 401") for _, _, detail in report.failures):
        console.print(f"[red]the server refused the signature[/red]: {SIGNING_HINT}")
    if log_out is not None:
        write_log(log_out, sent)
    if truth_out is not None:
        accepted = (event for event in sent if event.event_id in report.accepted_ids)
        write_truth(truth_out, ground_truth(accepted, end, rep_timezones(config)))
        console.print(f"ground truth at {end.isoformat()} written to {truth_out}")
    if report.failures:
        raise typer.Exit(1)


def _shift_text(config: FloorConfig) -> str:
    shift = config.shift
    if shift is None:
        return "around the clock"
    days = ",".join(str(day) for day in shift.days)
    return f"{shift.start:%H:%M}-{shift.end:%H:%M} on ISO weekdays {days}"


async def _register(api_url: str, key: str, config: FloorConfig) -> None:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
        try:
            count = await register(client, config)
        except httpx.HTTPError as exc:
            raise typer.BadParameter(f"registering the roster failed: {exc}") from exc
    console.print(f"registered {config.teams} teams and {count} reps")


@dataclass(frozen=True, slots=True)
class _Run:
    """One simulation run's wiring: floor, faults, and a sender to the ingest."""

    config: FloorConfig
    faults: Faults
    policy: RetryPolicy
    url: str
    secret: str | None
    concurrency: int

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.concurrency)
        return httpx.AsyncClient(base_url=self.url, limits=limits)

    async def history(
        self, start: datetime, end: datetime, batch: int, rate: float | None
    ) -> tuple[list[CallEvent], SendReport]:
        """Send [start, end) of the floor's history as fast as allowed."""
        sent = [item.event for item in inject(generate(self.config, start, end), self.faults)]
        async with self._client() as client:
            sender = Sender(client, self.secret, self.policy)
            with _progress(len(sent), "events") as advance:
                report = await send_all(
                    sender,
                    batched(sent, batch),
                    rate=rate,
                    concurrency=self.concurrency,
                    progress=advance,
                )
        return sent, report

    async def live(
        self, start: datetime, batch: int, duration: float
    ) -> tuple[list[CallEvent], SendReport, datetime]:
        """Send the history since `start`, then each event as it happens, until stopped."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
        if duration:
            loop.call_later(duration, stop.set)
        sent: list[CallEvent] = []
        schedule = inject(stream(self.config, start), self.faults)
        async with self._client() as client:
            sender = Sender(client, self.secret, self.policy)
            with _progress(None, "live events (Ctrl-C stops)") as advance:

                def on_sent(events: Sequence[CallEvent], _: Delivery) -> None:
                    sent.extend(events)
                    advance(len(events))

                report = await send_live(sender, schedule, stop, batch=batch, on_sent=on_sent)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
        return sent, report, datetime.now(UTC)


def verify(
    truth: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="From simulate --truth-out; the server must have seen only that run's reps "
            "(a fresh server, or --id-prefix).",
        ),
    ],
    url: Annotated[str, typer.Option(help="Base URL of the API.")] = DEFAULT_URL,
    key: Annotated[str | None, typer.Option(envvar=KEY_ENV, help="API key (viewer).")] = None,
    windows: Annotated[str, typer.Option(help="Comma-separated windows.")] = "today,week,month",
    tolerance: Annotated[float, typer.Option(min=0, help="Relative slack (0: exact).")] = 0.0,
    wait: Annotated[float, typer.Option(min=0, help="Retry for this many seconds.")] = 0.0,
    rows: Annotated[int, typer.Option(min=1, help="Mismatch rows shown at most.")] = 50,
) -> None:
    """Compare a running API's rep KPIs with the ground truth; exit 1 on any difference."""
    names = [name.strip() for name in windows.split(",") if name.strip()]
    unknown = sorted(set(names) - set(WINDOWS))
    if unknown or not names:
        raise typer.BadParameter(f"windows are among {', '.join(WINDOWS)}", param_hint="--windows")
    expected = read_truth(truth)
    headers = {"authorization": f"Bearer {key}"} if key else {}

    async def run() -> bool:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            deadline = asyncio.get_running_loop().time() + wait
            while True:
                verdict = await check(client, expected, names, tolerance=tolerance)
                if verdict.ok or asyncio.get_running_loop().time() >= deadline:
                    render(verdict, expected, names, Console(), limit=rows)
                    return verdict.ok
                await asyncio.sleep(1.0)

    try:
        ok = asyncio.run(run())
    except AccessDenied as exc:
        console.print(f"[red]the API refused the key[/red]: {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(0 if ok else 1)
