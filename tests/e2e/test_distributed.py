"""End to end on the real thing: ingest, a Faust worker and the API as separate OS processes,
against the local Kafka and PostgreSQL. Events go in over signed HTTP; the KPIs come out of the
API and the calls out of PostgreSQL, and both must be exact."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
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

pytestmark = pytest.mark.timeout(240)


def _calls_in_postgres(dsn: str, run: str) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(
                await conn.fetch(
                    "SELECT call_id, rep_id, end_status, outcome, amount, talk_seconds "
                    "FROM calls WHERE call_id LIKE $1 ORDER BY call_id",
                    f"{run}-%",
                )
            )
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _wait_for_calls(dsn: str, run: str, want_outcome: str) -> dict[str, asyncpg.Record]:
    """The run's call rows, once the history consumer has stored the last versions."""
    deadline = time.monotonic() + 30
    while True:
        by_id = {r["call_id"]: r for r in _calls_in_postgres(dsn, run)}
        done = len(by_id) == 5 and by_id[f"{run}-c3"]["outcome"] == want_outcome
        if done or time.monotonic() > deadline:
            return by_id
        time.sleep(0.5)


def test_events_flow_through_kafka_faust_and_api_into_exact_kpis_and_postgres(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    run = f"e2e{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    topics = {
        "CALLPULSE_EVENTS_TOPIC": f"{run}.call-events",
        "CALLPULSE_FACTS_TOPIC": f"{run}.rep-facts",
        "CALLPULSE_KPIS_TOPIC": f"{run}.kpis",
        "CALLPULSE_CALLS_TOPIC": f"{run}.calls",
        "CALLPULSE_ALERTS_TOPIC": f"{run}.alerts",
        "CALLPULSE_ROSTER_TOPIC": f"{run}.roster",
    }
    env = {
        **topics,
        "CALLPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CALLPULSE_DATABASE_URL": postgres_url,
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": tz,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_APP_ID": f"{run}-aggregator",
        "CALLPULSE_PARTITIONS": "3",
        "CALLPULSE_WEB_PORT": str(free_port()),
        "CALLPULSE_DATA_DIR": str(tmp_path / "faust"),
        "CALLPULSE_CONSUMER_GROUP_PREFIX": run,
    }
    ingest_port, api_port = free_port(), free_port()
    ingest_url, api_url = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
    events, batches = scenario(run, now)
    want = expected(events, now, tz)
    assert set(want) == {f"{run}-alice", f"{run}-bob", f"{run}-carol"}

    with (
        process(["services.cli", "aggregator", "--loglevel", "warning"], env, tmp_path / "agg.log"),
        process(
            ["services.cli", "ingest", "--port", str(ingest_port)], env, tmp_path / "in.log"
        ) as ingest,
        process(["services.cli", "api", "--port", str(api_port)], env, tmp_path / "api.log") as api,
    ):
        wait_http(f"{ingest_url}/readyz", proc=ingest)
        wait_http(f"{api_url}/healthz", proc=api)
        post_batches(ingest_url, batches)
        wait_for_kpis(api_url, want)

        by_id = _wait_for_calls(postgres_url.replace("+asyncpg", ""), run, want_outcome="callback")
        assert sorted(by_id) == [f"{run}-c{i}" for i in range(1, 6)]
        assert by_id[f"{run}-c1"]["outcome"] == "sale"
        assert str(by_id[f"{run}-c1"]["amount"]).startswith("120.5")
        assert by_id[f"{run}-c2"]["end_status"] == "no_answer"
        assert by_id[f"{run}-c3"]["outcome"] == "callback"  # the correction won
        assert by_id[f"{run}-c4"]["rep_id"] == f"{run}-carol"
        assert float(by_id[f"{run}-c5"]["talk_seconds"]) == pytest.approx(281.5)
