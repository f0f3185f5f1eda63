"""The simulator against the real embedded mode: faults in, an exact match out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.simulator.cli import simulate, verify
from tests.e2e.scenario import ADMIN_KEY, SECRET, free_port, midday_timezone, process, wait_http

pytestmark = pytest.mark.timeout(180)

app = typer.Typer()
app.command()(simulate)
app.command()(verify)


def test_simulate_then_verify_against_callpulse_run(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    zone = midday_timezone(datetime.now(UTC))
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": zone,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
    }
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    truth = tmp_path / "truth.json"
    runner = CliRunner()
    with process(args, env, tmp_path / "server.log") as server:
        wait_http(f"{url}/readyz", proc=server)
        simulated = runner.invoke(
            app,
            [
                "simulate",
                *("--url", url, "--secret", SECRET, "--key", ADMIN_KEY, "--timezone", zone),
                *("--reps", "12", "--teams", "3", "--minutes", "40", "--all-day"),
                *("--duplicates", "0.1", "--reorder", "0.2", "--late", "0.05"),
                *("--truth-out", str(truth)),
            ],
        )
        assert simulated.exit_code == 0, simulated.output
        checked = runner.invoke(
            app,
            ["verify", "--url", url, "--key", ADMIN_KEY, "--truth", str(truth), "--wait", "20"],
            terminal_width=200,
        )
    assert checked.exit_code == 0, checked.output
    assert "exact match" in checked.output
