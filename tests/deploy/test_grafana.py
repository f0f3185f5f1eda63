"""deploy/grafana: the dashboard picks its data source through a variable, every expression in
it names metrics the code defines, and it has a panel for every metric family the services
export (each team KPI included)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from services.api.metrics import SERIES
from tests.deploy.tools import DEPLOY, ROOT, load, metric_names_in_code, referenced

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "callpulse.json"


def dashboard() -> dict[str, Any]:
    out: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return out


def exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, dict) and "query" in value:
                yield str(value["query"])
            else:
                yield from exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from exprs(item)


def datasources(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            yield node["datasource"]
        for value in node.values():
            yield from datasources(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasources(item)


def test_the_dashboard_uses_only_metrics_the_code_defines() -> None:
    known = metric_names_in_code()
    found = list(exprs(dashboard()))
    assert len(found) > 40
    for expr in found:
        used = referenced(expr)
        assert used, f"no callpulse metric in {expr!r}"
        assert used <= known, f"unknown metric {used - known} in {expr!r}"


def families_in_code() -> set[str]:
    """Each metric family the services export (base names: no _total), from their metrics.py:
    the literal names, and the team and rep KPI families built from SERIES."""
    literals = {
        name.removesuffix("_total")
        for path in ROOT.glob("services/*/metrics.py")
        for name in re.findall(r'"(callpulse_\w+)"', path.read_text())
    }
    prefixes = {"callpulse_team", "callpulse_rep"}  # _families(prefix, …) in services/api
    kpis = {f"{prefix}_{suffix}" for prefix in prefixes for suffix, _ in SERIES.values()}
    return (literals - prefixes) | kpis


def test_every_metric_family_has_a_panel() -> None:
    """API consumed messages, calls stored, alert transitions and deliveries, aggregator facts
    and alerts, omitted rep series, and every team KPI (SERIES) included."""
    used = {
        name.removesuffix("_total").removesuffix("_bucket")
        for expr in exprs(dashboard())
        for name in referenced(expr)
    }
    rep_kpis = {f"callpulse_rep_{suffix}" for suffix, _ in SERIES.values()}
    missing = families_in_code() - used - rep_kpis
    assert missing == set()
    for suffix, _ in SERIES.values():
        assert f"callpulse_team_{suffix}" in used, suffix
    for family in (
        "callpulse_api_consumed_messages",
        "callpulse_api_calls_stored",
        "callpulse_api_alert_transitions",
        "callpulse_api_alert_deliveries",
        "callpulse_aggregator_facts",
        "callpulse_aggregator_alerts",
        "callpulse_api_rep_series_omitted",
    ):
        assert family in used, family


def test_the_data_source_is_a_variable_not_a_uid() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "team", "window"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    sources = list(datasources(board))
    assert len(sources) > 40
    for source in sources:
        if source.get("type") == "grafana":  # the built-in annotations
            continue
        assert source == {"type": "prometheus", "uid": "${datasource}"}, source
    provisioned = load("grafana/provisioning/datasources/prometheus.yaml")["datasources"][0]
    assert provisioned["uid"] not in DASHBOARD.read_text()


def test_the_dashboard_is_well_formed_and_provisioned() -> None:
    board = dashboard()
    panels = board["panels"]
    assert board["uid"] == "callpulse-floor"
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
    kinds = {p["type"] for p in panels}
    assert {"stat", "table", "timeseries", "row"} <= kinds
    provider = load("grafana/provisioning/dashboards/callpulse.yaml")
    path = provider["providers"][0]["options"]["path"]
    compose = load("compose.yaml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts
    assert (ROOT / "deploy" / "grafana" / "dashboards").is_dir()
