"""verify: an exact match passes, one wrong KPI is found and named."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from rich.console import Console

from schemas.kpis import KPI_NAMES
from services.simulator.floor import FloorConfig, generate, rep_timezones
from services.simulator.truth import Truth, ground_truth
from services.simulator.verify import AccessDenied, Verdict, check, compare, render
from tests.unit.simulator.fakeapi import KEY, fake_api

END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CONFIG = FloorConfig(reps=4, teams=2, shift=None)
TRUTH = ground_truth(generate(CONFIG, END - timedelta(minutes=45), END), END, rep_timezones(CONFIG))
WINDOWS = ("today", "60m", "month")


def _client(
    truth: Truth, tamper: dict[tuple[str, str, str], object] | None = None, key: str = KEY
) -> httpx.AsyncClient:
    app = fake_api(truth, tamper)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://api",
        headers={"authorization": f"Bearer {key}"},
    )


def _render(verdict: Verdict) -> str:
    out = io.StringIO()
    render(verdict, TRUTH, WINDOWS, Console(file=out, width=200))
    return out.getvalue()


async def test_an_exact_match_passes() -> None:
    assert len(TRUTH) == 4
    async with _client(TRUTH) as client:
        verdict = await check(client, TRUTH, WINDOWS)
    assert verdict.ok
    assert verdict.values == 4 * len(WINDOWS) * len(KPI_NAMES)
    assert "exact match" in _render(verdict)


async def test_one_wrong_kpi_is_found_and_named() -> None:
    rep = "rep-2-01"
    right = TRUTH[rep]["today"]["talk_seconds"]
    async with _client(TRUTH, {(rep, "today", "talk_seconds"): right + 0.001}) as client:
        verdict = await check(client, TRUTH, WINDOWS)
    assert not verdict.ok
    assert [(m.rep_id, m.window, m.kpi) for m in verdict.mismatches] == [
        (rep, "today", "talk_seconds")
    ]
    assert verdict.mismatches[0].expected == right
    table = _render(verdict)
    assert "talk_seconds" in table
    assert rep in table


async def test_a_null_versus_zero_and_a_missing_rep_are_mismatches() -> None:
    served = {rep: windows for rep, windows in TRUTH.items() if rep != "rep-1-01"}
    assert TRUTH["rep-2-02"]["month"]["connect_rate"] is not None
    async with _client(served, {("rep-2-02", "month", "connect_rate"): None}) as client:
        verdict = await check(client, TRUTH, ["month"])
    assert [(m.rep_id, m.kpi, m.actual) for m in verdict.mismatches] == [
        ("rep-1-01", "(response)", "HTTP 404"),
        ("rep-2-02", "connect_rate", None),
    ]


async def test_a_refused_key_stops_the_comparison() -> None:
    async with _client(TRUTH, key="wrong") as client:
        with pytest.raises(AccessDenied, match="401"):
            await check(client, TRUTH, ["today"])


@pytest.mark.parametrize(
    ("expected", "actual", "tolerance", "equal"),
    [
        (1.5, 1.5, 0.0, True),
        (None, None, 0.0, True),
        (None, 0, 0.0, False),
        (0.333333, 0.333334, 0.0, False),
        (0.333333, 0.333334, 1e-5, True),
        (3, 3.0, 0.0, True),
    ],
)
def test_compare(expected: object, actual: object, tolerance: float, equal: bool) -> None:
    found = compare("r", "today", {"csat_avg": expected}, {"csat_avg": actual}, tolerance)
    assert (not found) == equal
