"""A live demo floor for `callpulse run --demo`: ~50 reps, back-filled, then live events.

Before the first event the demo sets the floor up as a manager would: named teams and reps
(English and Chinese names), the design's targets (50 dials a day, an average talk of at least
5 minutes, 10 % conversion) and alert rules for every team; then it prints the team ids and a
wallboard link that carries a viewer key of its own.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from sqlalchemy.exc import SQLAlchemyError

from schemas.events import CallEvent
from services.api.db.engine import create_engine, create_sessionmaker
from services.api.keys import create_key, revoke_key
from services.simulator.faults import inject
from services.simulator.floor import FloorConfig, rep_timezones, roster, stream
from services.simulator.roster import register, team_name
from services.simulator.sender import Delivery, Sender, SendReport, send_live
from services.simulator.truth import ground_truth, write_log, write_truth

log = structlog.get_logger(__name__)

BACKFILL = timedelta(minutes=30)
TEAM_SIZE = 10
DATABASE_URL_ENV = "CALLPULSE_DATABASE_URL"

# The design's example targets (design §1), every team's defaults for its reps.
TARGETS: tuple[dict[str, Any], ...] = (
    {"kpi": "dials", "window": "today", "value": 50},
    {"kpi": "avg_talk_seconds", "window": "today", "value": 300},
    {"kpi": "conversion_rate", "window": "today", "value": 0.10},
)
# Rules a floor manager would start from; on the demo's floor a few of them fire. (No pace
# rule: the demo's reps start with 30 minutes of history, so by day's pace all would be behind.)
ALERT_RULES: tuple[dict[str, Any], ...] = (
    {
        "rule_id": "connect-rate-60m",
        "kind": "threshold",
        "kpi": "connect_rate",
        "window": "60m",
        "value": 0.05,
        "min_sample": 10,
    },
    {
        "rule_id": "short-talks-60m",
        "kind": "threshold",
        "kpi": "avg_talk_seconds",
        "window": "60m",
        "value": 150,
        "min_sample": 10,
    },
    {
        "rule_id": "conversion-today",
        "kind": "threshold",
        "kpi": "conversion_rate",
        "window": "today",
        "value": 0.05,
        "min_sample": 30,
    },
    {"rule_id": "idle-10m", "kind": "idle", "idle_minutes": 10},
)


# The competition the demo floor runs (`make demo` shows it on the wallboard).
COMPETITION: dict[str, Any] = {
    "name": "Daily champion 今日冠军",
    "description": "10 points a sale, 1 a conversation; ranked with an average talk of 2 min.",
    "score": [{"kpi": "conversions", "weight": 10}, {"kpi": "conversations", "weight": 1}],
    "minimums": [{"kpi": "avg_talk_seconds", "at_least": 120}],
    "default_target": 60,
    "period": {"kind": "daily"},
}


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """What the demo set up: its teams (id, name) and a wallboard link with a viewer key."""

    teams: tuple[tuple[str, str], ...]
    configured: bool
    wallboard_url: str | None


def demo_config(
    reps: int = 50, timezone: str = "UTC", seed: int = 7, run_id: str = "demo"
) -> FloorConfig:
    """Teams of ten in one time zone, around the clock, brisk: 1-2 events/s for 50 reps."""
    teams = max(1, round(reps / TEAM_SIZE))
    return FloorConfig(
        seed=seed,
        reps=reps,
        teams=teams,
        run_id=run_id,
        timezones=(timezone,),
        shift=None,
        dials_per_hour=120.0,
        # Around the 5-minute average talk target: some reps meet it, some do not.
        talk_median_seconds=200.0,
    )


async def run_demo(
    base_url: str,
    secret: str | None,
    reps: int = 50,
    stop: asyncio.Event | None = None,
    *,
    timezone: str = "UTC",
    api_key: str | None = None,
    database_url: str | None = None,
    seed: int = 7,
    log_out: Path | None = None,
    truth_out: Path | None = None,
) -> SendReport:
    """Stream a live floor into the ingest at `base_url` until `stop` is set (or cancelled).

    The last 30 minutes are back-filled at once so the numbers show immediately. `timezone`
    should be the server's default zone unless the demo can register its teams: with an admin
    `api_key`, or with the server's database (`database_url`, else CALLPULSE_DATABASE_URL, which
    the embedded server sets before the demo starts), where it makes a short-lived admin key and
    the wallboard's viewer key, as `callpulse keys create` would.
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
        database_url = database_url or os.environ.get(DATABASE_URL_ENV)
        setup = await set_up(base_url, config, api_key, database_url)
        sys.stderr.write(announce(setup))
        sender = Sender(client, secret)
        schedule = inject(stream(config, start))
        report = await send_live(sender, schedule, stop, batch=500, on_sent=on_sent)
    if log_out is not None:
        write_log(log_out, sent)
    if truth_out is not None:
        now = datetime.now(UTC)
        write_truth(truth_out, ground_truth(sent, now, rep_timezones(config)))
    return report


async def set_up(
    base_url: str, config: FloorConfig, api_key: str | None, database_url: str | None
) -> DemoSetup:
    """Name the teams and reps, give every team the targets and alert rules, and make the
    wallboard link. The demo goes on without them (and says so in the log) when this fails."""
    teams = tuple((team.team_id, team_name(i)) for i, team in enumerate(roster(config)))
    viewer: str | None = None
    configured = False
    setup_key: int | None = None
    sessions = None
    engine = create_engine(database_url) if database_url else None
    try:
        if engine is not None:
            sessions = create_sessionmaker(engine)
            stamp = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
            viewer = (await create_key(sessions, f"demo wallboard {stamp}", "viewer")).key
            if api_key is None:
                made = await create_key(sessions, f"demo setup {stamp}", "admin")
                api_key, setup_key = made.key, made.info.id
        if api_key is None:
            log.warning("demo_roster_not_registered", error="no admin key and no database")
        else:
            await _configure(base_url, api_key, config)
            configured = True
    except (httpx.HTTPError, SQLAlchemyError, OSError) as exc:  # the floor runs on without
        log.warning("demo_roster_not_registered", error=str(exc))
    finally:
        if sessions is not None and setup_key is not None:
            await revoke_key(sessions, setup_key)  # the setup is done: its admin key goes
        if engine is not None:
            await engine.dispose()
    first = teams[0][0] if teams else None
    url = None
    if viewer is not None:
        url = f"{base_url}/?{urlencode({'key': viewer, 'team': first})}"
    return DemoSetup(teams=teams, configured=configured, wallboard_url=url)


async def _configure(base_url: str, api_key: str, config: FloorConfig) -> None:
    """PUT the roster, then each team's targets and alert rules; start the daily competition."""
    headers = {"authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
        await register(client, config)
        for team in roster(config):
            for path, body in (
                ("targets", {"targets": list(TARGETS)}),
                ("alert-rules", {"rules": list(ALERT_RULES)}),
            ):
                response = await client.put(f"/v1/teams/{team.team_id}/{path}", json=body)
                response.raise_for_status()
        running = (await client.get("/v1/competitions")).json()
        if not any(c["name"] == COMPETITION["name"] for c in running):
            teams = [team.team_id for team in roster(config)]
            competition = {**COMPETITION, "participants": {"team_ids": teams}}
            (await client.post("/v1/competitions", json=competition)).raise_for_status()


def announce(setup: DemoSetup) -> str:
    """What `make demo` prints once the floor is set up: the teams and the wallboard link."""
    if setup.configured:
        head = (
            f"callpulse demo: {len(setup.teams)} teams with targets (50 dials a day, average "
            "talk of at least 5 minutes, 10 % conversion) and alert rules:"
        )
    else:
        head = f"callpulse demo: {len(setup.teams)} teams (not named: see the log):"
    lines = ["", head, "", *(f"    {tid:<10} {name}" for tid, name in setup.teams), ""]
    if setup.wallboard_url is None:
        lines.append("The wallboard needs an API key: `callpulse keys create --role viewer`.")
    else:
        lines += [
            "Wallboard (its link carries a viewer key; add &lang=zh for Chinese):",
            "",
            f"    {setup.wallboard_url}",
        ]
    return "\n".join([*lines, "", ""])
