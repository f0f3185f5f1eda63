"""A live demo floor for `callpulse run --demo`: ~50 reps, back-filled, then live events."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import structlog

from schemas.events import CallEvent
from services.simulator.faults import inject
from services.simulator.floor import FloorConfig, rep_timezones, stream
from services.simulator.roster import register
from services.simulator.sender import Delivery, Sender, SendReport, send_live
from services.simulator.truth import ground_truth, write_log, write_truth

log = structlog.get_logger(__name__)

BACKFILL = timedelta(minutes=30)
TEAM_SIZE = 10


def demo_config(
    reps: int = 50, timezone: str = "UTC", seed: int = 7, run_id: str = "demo"
) -> FloorConfig:
    """Teams of ten in one time zone, around the clock, brisk: 1.5-2 events/s for 50 reps."""
    teams = max(1, round(reps / TEAM_SIZE))
    return FloorConfig(
        seed=seed,
        reps=reps,
        teams=teams,
        run_id=run_id,
        timezones=(timezone,),
        shift=None,
        dials_per_hour=120.0,
        talk_median_seconds=90.0,
    )


async def run_demo(
    base_url: str,
    secret: str | None,
    reps: int = 50,
    stop: asyncio.Event | None = None,
    *,
    timezone: str = "UTC",
    api_key: str | None = None,
    seed: int = 7,
    log_out: Path | None = None,
    truth_out: Path | None = None,
) -> SendReport:
    """Stream a live floor into the ingest at `base_url` until `stop` is set (or cancelled).

    The last 30 minutes are back-filled at once so the numbers show immediately. `timezone`
    should be the server's default zone unless `api_key` (admin) registers the demo teams.
    """
    stop = stop or asyncio.Event()
    start = datetime.now(UTC).replace(microsecond=0) - BACKFILL
    config = demo_config(reps, timezone, seed, run_id=f"demo-{start:%Y%m%dT%H%M%S}")
    sent: list[CallEvent] = []

    def on_sent(events: Sequence[CallEvent], delivery: Delivery) -> None:
        if delivery.accepted:
            sent.extend(events)
        else:
            log.warning("demo_events_given_up", events=len(events), detail=delivery.detail)

    async with httpx.AsyncClient(base_url=base_url) as client:
        if api_key is not None:
            await _register(base_url, api_key, config)
        sender = Sender(client, secret)
        schedule = inject(stream(config, start))
        report = await send_live(sender, schedule, stop, batch=500, on_sent=on_sent)
    if log_out is not None:
        write_log(log_out, sent)
    if truth_out is not None:
        now = datetime.now(UTC)
        write_truth(truth_out, ground_truth(sent, now, rep_timezones(config)))
    return report


async def _register(base_url: str, api_key: str, config: FloorConfig) -> None:
    """Name the demo's teams and reps; the demo goes on without names when this fails."""
    headers = {"authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
        try:
            await register(client, config)
        except httpx.HTTPError as exc:
            log.warning("demo_roster_not_registered", error=str(exc))
