"""The short chaos run of `make chaos`: every service and the broker SIGKILLed in turn under
live signed traffic; the KPIs must match the simulator's truth exactly (tests/chaos/run.py).

The three-broker variant stays a make target (`make chaos-cluster`): its 45-s version took
199 s on the shared 2-core machine, each node's restart 18-41 s of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(600)


def test_a_short_chaos_run_ends_in_an_exact_match(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.chaos.run",
            "--seconds",
            "45",
            "--reps",
            "40",
            "--settle",
            "120",
            "--workdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
        env={**os.environ, "CALLPULSE_TEST_DATABASE_URL": postgres_url},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exact"] is True
    assert summary["gave_up"] is False
    assert summary["events"] > 0
    assert summary["retries"] > 0  # the kills were felt: the sender had to retry
