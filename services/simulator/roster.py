"""Registers the simulated teams (time zone, shift) and reps with the API, so windows line up."""

from __future__ import annotations

import asyncio
from datetime import time
from typing import Any

import httpx

from services.simulator.floor import FloorConfig, ShiftHours, roster

FIRST_NAMES = (
    *("Ada", "Ben", "Chen", "Dana", "Emil", "Fatima", "Gus", "Hana", "Ivan", "Jia", "Kofi"),
    *("Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma"),
    *("Vera", "Wei", "Ximena", "Yusuf", "Zoe"),
)
ALL_DAY = ShiftHours(days=(1, 2, 3, 4, 5, 6, 7), start=time(0), end=time(23, 59, 59))


def rep_name(index: int) -> str:
    """A readable, deterministic name for the `index`-th rep of the floor."""
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    return f"{first} {chr(ord('A') + index // len(FIRST_NAMES) % 26)}."


def _shift(config: FloorConfig) -> dict[str, Any]:
    shift = config.shift or ALL_DAY
    return {
        "days": list(shift.days),
        "start": shift.start.isoformat(),
        "end": shift.end.isoformat(),
    }


async def register(client: httpx.AsyncClient, config: FloorConfig, concurrency: int = 16) -> int:
    """PUT every team and rep (the client carries the admin key); raises the first HTTP error."""
    slots = asyncio.Semaphore(concurrency)
    errors: list[httpx.HTTPError] = []

    async def put(path: str, body: dict[str, Any]) -> None:
        async with slots:
            try:
                response = await client.put(path, json=body)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                errors.append(exc)

    teams = roster(config)
    for number, team in enumerate(teams, start=1):
        body = {"name": f"Team {number}", "timezone": team.timezone, "shift": _shift(config)}
        await put(f"/v1/teams/{team.team_id}", body)
        if errors:
            raise errors[0]
    reps = [(rep_id, team.team_id) for team in teams for rep_id in team.rep_ids]
    async with asyncio.TaskGroup() as group:
        for index, (rep_id, team_id) in enumerate(reps):
            body = {"name": rep_name(index), "team_id": team_id}
            group.create_task(put(f"/v1/reps/{rep_id}", body))
    if errors:
        raise errors[0]
    return len(reps)
