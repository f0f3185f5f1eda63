"""Compares a running API's rep KPIs with the ground truth, KPI by KPI, and reports mismatches."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from schemas.kpis import KPI_NAMES
from services.simulator.truth import Truth

MISSING = "(missing)"


class AccessDenied(Exception):
    """The API refused the key: nothing can be compared."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One KPI of one rep and window that differs (kpi `(response)`: the read itself failed)."""

    rep_id: str
    window: str
    kpi: str
    expected: Any
    actual: Any


@dataclass(slots=True)
class Verdict:
    """What was compared and what differed."""

    values: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    denied: str | None = None

    @property
    def ok(self) -> bool:
        """True on an exact match of at least one value: comparing nothing proves nothing."""
        return not self.mismatches and self.values > 0


def _equal(expected: Any, actual: Any, tolerance: float) -> bool:
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) and tolerance > 0:
        return math.isclose(expected, actual, rel_tol=tolerance, abs_tol=tolerance)
    return bool(expected == actual)


def compare(
    rep_id: str,
    window: str,
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    tolerance: float = 0.0,
) -> list[Mismatch]:
    """The KPIs of §1 that differ between the truth and the API's answer."""
    out = []
    for kpi in KPI_NAMES:
        if kpi not in expected:
            continue
        got = actual.get(kpi, MISSING)
        if not _equal(expected[kpi], got, tolerance):
            out.append(Mismatch(rep_id, window, kpi, expected[kpi], got))
    return out


async def check(
    client: httpx.AsyncClient,
    truth: Truth,
    windows: Sequence[str],
    *,
    tolerance: float = 0.0,
    concurrency: int = 16,
) -> Verdict:
    """Read every rep's KPIs for each window and compare them (AccessDenied on 401/403)."""
    slots = asyncio.Semaphore(concurrency)
    verdict = Verdict()

    async def one(rep_id: str, window: str) -> None:
        expected = truth[rep_id].get(window)
        if expected is None:
            verdict.mismatches.append(Mismatch(rep_id, window, "(truth)", "a window", MISSING))
            return
        verdict.values += sum(1 for kpi in KPI_NAMES if kpi in expected)
        async with slots:
            try:
                response = await client.get(f"/v1/reps/{rep_id}/kpis", params={"window": window})
            except httpx.TransportError as exc:
                verdict.mismatches.append(
                    Mismatch(rep_id, window, "(response)", "HTTP 200", type(exc).__name__)
                )
                return
        if response.status_code in (401, 403):
            verdict.denied = f"HTTP {response.status_code}: {response.text[:200]}"
            return
        if response.status_code != 200:
            got = f"HTTP {response.status_code}"
            verdict.mismatches.append(Mismatch(rep_id, window, "(response)", "HTTP 200", got))
            return
        verdict.mismatches.extend(compare(rep_id, window, expected, response.json(), tolerance))

    async with asyncio.TaskGroup() as group:
        for rep_id in sorted(truth):
            for window in windows:
                group.create_task(one(rep_id, window))
    if verdict.denied is not None:
        raise AccessDenied(verdict.denied)
    verdict.mismatches.sort(key=lambda m: (m.rep_id, m.window, m.kpi))
    return verdict


def render(
    verdict: Verdict, truth: Truth, windows: Sequence[str], console: Console, limit: int = 50
) -> None:
    """Print an exact-match line, or a table of the mismatches (the first `limit` rows)."""
    scope = f"{len(truth)} reps x {len(windows)} windows ({', '.join(windows)})"
    if not verdict.mismatches and verdict.values == 0:
        console.print(
            f"[red]nothing to compare[/red]: the truth holds 0 KPI values ({scope}); did "
            "`simulate` send any events? (off shift it sends none: use --all-day)"
        )
        return
    if verdict.ok:
        console.print(f"[green]exact match[/green]: {verdict.values} KPI values, {scope}")
        return
    reps = len({m.rep_id for m in verdict.mismatches})
    table = Table(title=f"{len(verdict.mismatches)} mismatches in {reps} reps, {scope}")
    for column in ("rep", "window", "KPI", "expected", "actual"):
        table.add_column(column, justify="right" if column in ("expected", "actual") else "left")
    for m in verdict.mismatches[:limit]:
        table.add_row(m.rep_id, m.window, m.kpi, repr(m.expected), repr(m.actual))
    console.print(table)
    if len(verdict.mismatches) > limit:
        console.print(f"... and {len(verdict.mismatches) - limit} more")
