"""`callpulse run --demo`: a live floor shows within seconds, and once the demo floor stops,
`callpulse verify` finds the API's numbers exactly equal to the demo's ground truth."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.scenario import ADMIN_KEY, ROOT, SECRET, free_port, process, wait_http

pytestmark = pytest.mark.timeout(150)


def test_demo_floor_moves_then_verifies_exactly(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = {"CALLPULSE_WEBHOOK_SECRET": SECRET, "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}
    args = [
        "services.cli",
        "run",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--demo",
        "--demo-minutes",
        "0.25",
    ]
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with process(args, env, tmp_path / "demo.log") as server:
        started = time.monotonic()
        wait_http(f"{url}/readyz", proc=server)
        dials = 0
        while time.monotonic() - started < 10 and not dials:
            board = httpx.get(
                f"{url}/v1/leaderboard", params={"metric": "dials"}, headers=headers, timeout=5
            )
            dials = sum(row["value"] or 0 for row in board.json().get("rows", []))
            time.sleep(0.5)
        assert dials > 0, "the demo floor shows numbers within 10 seconds"
        truth = data / "demo-truth.json"
        deadline = time.monotonic() + 60
        while not truth.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert truth.exists(), "the demo writes its ground truth when it stops"
        time.sleep(2)  # the last snapshots are coalesced every 250 ms
        verify = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.cli",
                "verify",
                "--url",
                url,
                "--key",
                ADMIN_KEY,
                "--truth",
                str(truth),
                "--windows",
                "today,week,month",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "exact match" in verify.stdout + verify.stderr
