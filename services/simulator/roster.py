"""Registers the simulated teams (name, time zone, shift) and reps (name) with the API, so
windows line up and the wallboard shows people, not ids. Names mix English and Chinese, like a
floor that serves both markets."""

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
CHINESE_NAMES = (
    *("王芳", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷", "徐明"),
    *("孙丽", "马超", "朱琳", "胡斌", "郭晨", "何雪", "高峰", "林慧", "罗刚", "梁爽", "宋佳"),
    *("郑凯", "谢娜", "韩冰", "唐宁"),
)
TEAM_NAMES = ("North Star", "长城组", "Harbour", "熊猫组", "Summit", "凤凰组", "Atlas", "星火组")
ALL_DAY = ShiftHours(days=(1, 2, 3, 4, 5, 6, 7), start=time(0), end=time(23, 59, 59))


def rep_name(index: int) -> str:
    """A readable, deterministic name for the `index`-th rep of the floor: every other one is
    Chinese ("王芳"), the others English ("Ada A.")."""
    half, chinese = divmod(index, 2)
    if chinese:
        name = CHINESE_NAMES[half % len(CHINESE_NAMES)]
        return name if half < len(CHINESE_NAMES) else f"{name}{half // len(CHINESE_NAMES) + 1}"
    first = FIRST_NAMES[half % len(FIRST_NAMES)]
    return f"{first} {chr(ord('A') + half // len(FIRST_NAMES) % 26)}."


def team_name(index: int) -> str:
    """The `index`-th team's name (0-based): English and Chinese in turn, numbered past eight."""
    name = TEAM_NAMES[index % len(TEAM_NAMES)]
    return name if index < len(TEAM_NAMES) else f"{name} {index // len(TEAM_NAMES) + 1}"


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
    for index, team in enumerate(teams):
        body = {"name": team_name(index), "timezone": team.timezone, "shift": _shift(config)}
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
