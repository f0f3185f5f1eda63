"""End to end on the embedded default: one `callpulse run` process, SQLite, no Kafka.

The same scenario as the distributed test; then the process is killed (SIGKILL) and started
again, and the KPIs must be rebuilt exactly from the durable event log."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.scenario import (
    ADMIN_KEY,
    SECRET,
    expected,
    free_port,
    midday_timezone,
    post_batches,
    process,
    scenario,
    wait_for_kpis,
    wait_http,
)

pytestmark = pytest.mark.timeout(180)


def test_embedded_mode_counts_exactly_and_survives_a_kill(tmp_path: Path) -> None:
    run = f"emb{uuid.uuid4().hex[:8]}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    now = datetime.now(UTC)
    events, batches = scenario(run, now)
    tz = midday_timezone(now)
    want = expected(events, now, tz)
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": tz,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
    }

    with process(args, env, tmp_path / "first.log") as first:
        wait_http(f"{url}/readyz", proc=first)
        post_batches(url, batches)
        wait_for_kpis(url, want)
        first.kill()  # SIGKILL: no shutdown hooks run
        first.wait()

    with process(args, env, tmp_path / "second.log") as second:
        wait_http(f"{url}/readyz", proc=second)
        wait_for_kpis(url, want, timeout=30)

    databases = list((tmp_path / "data").glob("*.db"))
    assert databases, "the embedded mode keeps its data in SQLite files"
    calls: set[str] = set()
    for db in databases:
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "calls" in tables:
                calls |= {r[0] for r in conn.execute("SELECT call_id FROM calls")}
    assert calls == {f"{run}-c{i}" for i in range(1, 6)}
