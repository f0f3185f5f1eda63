"""A real Prometheus Alertmanager (Debian package `prometheus-alertmanager`) receives a firing and
then a resolved alert through the dispatcher, and shows them through its own API v2."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from services.api.alerts.service import StoredAlert
from services.api.app import create_app
from services.api.config import ApiSettings
from tests.integration.api.conftest import eventually
from tests.integration.api.servers import free_port, process, require_binary, wait_ready
from tests.unit.api.alerts import make_alert, resolve

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
CONFIG = """
route:
  receiver: "null"
receivers:
  - name: "null"
"""


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


async def test_firing_then_resolved_reach_alertmanager(tmp_path: Path) -> None:
    binary = require_binary(ALERTMANAGER, "prometheus-alertmanager")
    port = free_port()
    (tmp_path / "alertmanager.yml").write_text(CONFIG)
    argv = [
        binary,
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip: a single instance
    ]
    log = tmp_path / "alertmanager.log"
    base = f"http://127.0.0.1:{port}"
    settings = ApiSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db",
        BOOTSTRAP_ADMIN_KEY=SecretStr("cp_alertmanager"),
        ALERTMANAGER_URL=base,
        PUBLIC_URL="http://callpulse.test:8000",
        ALERT_POLL_SECONDS=0.2,
    )
    rep = f"rep-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    firing = make_alert(f"dials-pace.{rep}.1", rep_id=rep, team_id="north", at=now)

    with process(argv, log) as proc:
        await wait_ready(f"{base}/-/ready", proc, log)
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(base_url=base, timeout=10) as am,
        ):
            service = app.state.callpulse_api.alerts
            matcher = {"filter": f'alert_id="{firing.alert_id}"'}

            async def listed() -> list[dict[str, Any]]:
                response = await am.get("/api/v2/alerts", params=matcher)
                assert response.status_code == 200, response.text
                alerts: list[dict[str, Any]] = response.json()
                return alerts

            async def sent(state: str) -> StoredAlert | None:
                stored: StoredAlert | None = await service.get(firing.alert_id)
                ok = stored is not None and any(
                    d.state == state and d.status == "sent" for d in stored.deliveries
                )
                return stored if ok else None

            await service.record([firing])
            [active] = await eventually(listed)
            await eventually(lambda: sent("firing"))
            assert active["status"]["state"] == "active"
            assert active["labels"] == {
                "alertname": "CallpulsePace",
                "alert_id": firing.alert_id,
                "rule": "dials-pace",
                "kind": "pace",
                "rep_id": rep,
                "team_id": "north",
                "kpi": "dials",
                "window": "today",
                "severity": "warning",
                "service": "callpulse",
            }
            assert active["annotations"]["summary"] == firing.message_en
            assert active["annotations"]["summary_zh"] == firing.message_zh
            assert parse(active["startsAt"]) == firing.fired_at
            assert parse(active["endsAt"]) > datetime.now(UTC)
            assert active["generatorURL"] == f"http://callpulse.test:8000/v1/alerts?rep_id={rep}"

            resolved_at = now + timedelta(seconds=1)
            await service.record([resolve(firing, at=resolved_at)])
            await eventually(lambda: sent("resolved"))

            async def resolved() -> bool:
                # Alertmanager lists only unresolved alerts: a resolved one drops out, or
                # (while it is processed) shows an endsAt in the past.
                return all(parse(a["endsAt"]) <= datetime.now(UTC) for a in await listed())

            await eventually(resolved)
            everything = await am.get(
                "/api/v2/alerts",
                params={**matcher, "active": "true", "silenced": "true", "inhibited": "true"},
            )
            assert [a for a in everything.json() if a["status"]["state"] == "active"] == []
