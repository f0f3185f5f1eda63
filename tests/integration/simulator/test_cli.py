"""`simulate` then `verify`, through the typer commands, against a fake floor on a real port."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from schemas.events import event_from_json
from services.simulator.cli import simulate, verify
from services.simulator.truth import ground_truth, read_truth
from tests.integration.simulator.conftest import SECRET, ServerFactory
from tests.integration.simulator.fakefloor import ADMIN_KEY, FakeFloor

app = typer.Typer()
app.command()(simulate)
app.command()(verify)
runner = CliRunner()


def _zones(now: datetime) -> list[str]:
    """Two fixed-offset zones where `now` is around noon: no day boundary in a short test."""
    offsets = [max(-12, min(14, 12 - now.hour + shift)) for shift in (0, 1)]
    # Etc/GMT signs are inverted: Etc/GMT-5 is UTC+5.
    return ["UTC" if o == 0 else f"Etc/GMT{-o:+d}" for o in offsets]


@pytest.fixture
def floor() -> FakeFloor:
    """A fake floor that refuses the first attempt of every request."""
    return FakeFloor(secret=SECRET, fail_first=True)


def _simulate(url: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    zones = [arg for zone in _zones(datetime.now(UTC)) for arg in ("--timezone", zone)]
    result = runner.invoke(
        app,
        [
            "simulate",
            *("--url", url, "--secret", SECRET, "--key", ADMIN_KEY),
            *("--seed", "5", "--reps", "6", "--teams", "2", "--minutes", "45", "--all-day"),
            *("--batch", "40", "--duplicates", "0.1", "--reorder", "0.2", "--late", "0.05"),
            *("--log-out", str(tmp_path / "log.ndjson")),
            *("--truth-out", str(tmp_path / "truth.json")),
            *zones,
            *extra,
        ],
    )
    return result.exit_code, result.output


def _verify(url: str, tmp_path: Path) -> tuple[int, str]:
    args = ["verify", "--url", url, "--key", ADMIN_KEY, "--truth", str(tmp_path / "truth.json")]
    result = runner.invoke(app, args, terminal_width=200)
    return result.exit_code, result.output


def test_simulate_posts_the_log_and_verify_matches_exactly(
    server_factory: ServerFactory, floor: FakeFloor, tmp_path: Path
) -> None:
    url = server_factory(floor)
    code, output = _simulate(url, tmp_path)
    assert code == 0, output
    assert "registered 2 teams and 6 reps" in output

    sent = [event_from_json(line) for line in (tmp_path / "log.ndjson").read_text().splitlines()]
    assert len(sent) > len({e.event_id for e in sent}) > 100  # duplicates were injected
    assert sorted(floor.event_ids()) == sorted(e.event_id for e in sent)  # all, copies too
    truth = read_truth(tmp_path / "truth.json")
    assert sorted(truth) == sorted(floor.timezones)
    assert set(truth["rep-1-01"]) == {"today", "hour", "15m", "60m", "week", "month"}
    now_truth = ground_truth(sent, datetime.now(UTC), floor.timezones)
    assert now_truth["rep-2-03"]["today"] == truth["rep-2-03"]["today"]

    code, output = _verify(url, tmp_path)
    assert code == 0, output
    assert "exact match" in output


def test_verify_names_a_wrong_kpi(
    server_factory: ServerFactory, floor: FakeFloor, tmp_path: Path
) -> None:
    url = server_factory(floor)
    assert _simulate(url, tmp_path)[0] == 0
    truth = read_truth(tmp_path / "truth.json")
    floor.tamper[("rep-1-02", "week", "conversions")] = truth["rep-1-02"]["week"]["conversions"] + 1

    code, output = _verify(url, tmp_path)
    assert code == 1
    assert "1 mismatches" in output
    assert "rep-1-02" in output
    assert "conversions" in output


def test_live_mode_stops_and_its_truth_matches(
    server_factory: ServerFactory, floor: FakeFloor, tmp_path: Path
) -> None:
    url = server_factory(floor)
    code, output = _simulate(url, tmp_path, "--live", "--duration", "2")
    assert code == 0, output
    assert read_truth(tmp_path / "truth.json")
    code, output = _verify(url, tmp_path)
    assert code == 0, output


def test_a_refused_ingest_exits_1_and_reports(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    url = server_factory(FakeFloor(secret="whsec_" + "A" * 32))  # another secret: every POST fails
    code, output = _simulate(url, tmp_path, "--attempts", "1")
    assert code == 1
    assert "gave up" in output
