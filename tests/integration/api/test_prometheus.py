"""A real Prometheus (Debian package `prometheus`) scrapes the API and answers PromQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import SecretStr

from services.api.app import create_app
from services.api.config import ApiSettings
from tests.integration.api.conftest import eventually
from tests.integration.api.servers import free_port, process, require_binary, serve, wait_ready
from tests.unit.api.snapshots import make_snapshot

PROMETHEUS = "/usr/bin/prometheus"


def config(target: str) -> str:
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: callpulse-api
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
"""


async def test_prometheus_scrapes_team_kpis(tmp_path: Path) -> None:
    binary = require_binary(PROMETHEUS, "prometheus")
    settings = ApiSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db",
        BOOTSTRAP_ADMIN_KEY=SecretStr("cp_prometheus"),
    )
    app = create_app(settings)
    team = f"team-{uuid.uuid4().hex[:8]}"
    async with serve(app) as api_url:
        readmodel = app.state.callpulse_api.readmodel
        now = datetime.now(UTC)
        readmodel.apply(make_snapshot("r1", team, now, dials=12, connects=3))
        readmodel.apply(make_snapshot("r2", team, now, dials=5, connects=1))

        port = free_port()
        (tmp_path / "prometheus.yml").write_text(config(api_url.removeprefix("http://")))
        log = tmp_path / "prometheus.log"
        argv = [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with process(argv, log) as proc:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(f"{base}/-/ready", proc, log)
            query = f'callpulse_team_dials{{team_id="{team}",window="today"}}'
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:

                async def answered() -> list[dict[str, object]] | None:
                    response = await client.get("/api/v1/query", params={"query": query})
                    body = response.json()
                    assert body["status"] == "success", body
                    result: list[dict[str, object]] = body["data"]["result"]
                    return result or None

                [sample] = await eventually(answered)
                ratio = await client.get(
                    "/api/v1/query",
                    params={"query": f'callpulse_team_connect_ratio{{team_id="{team}"}}'},
                )
    assert sample["metric"] == {
        "__name__": "callpulse_team_dials",
        "instance": api_url.removeprefix("http://"),
        "job": "callpulse-api",
        "team_id": team,
        "window": "today",
    }
    _, value = sample["value"]
    assert float(value) == 17
    today = [
        float(s["value"][1])
        for s in ratio.json()["data"]["result"]
        if s["metric"]["window"] == "today"
    ]
    assert today == [round(4 / 17, 6)]
