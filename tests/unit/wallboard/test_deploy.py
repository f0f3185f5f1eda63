"""deploy/: Prometheus config and rules pass promtool, the dashboard and rules use only metric
names the code defines, and the compose file and manifests agree with the settings.

Docker and Kubernetes are not available here: these are static checks (deploy/README.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from services.aggregator.config import AggregatorSettings
from services.api.config import ApiSettings
from services.api.metrics import SERIES
from services.ingest.config import IngestSettings
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "callpulse.json"
RULES = DEPLOY / "prometheus" / "rules.yml"
DESIGN_SETTINGS = {  # design §3.4: the configuration names that are a contract
    "KAFKA_BOOTSTRAP",
    "DATABASE_URL",
    "WEBHOOK_SECRET",
    "TWILIO_AUTH_TOKEN",
    "TELNYX_PUBLIC_KEY",
    "VONAGE_SIGNATURE_SECRET",
    "AIRCALL_TOKEN",
    "FREESWITCH_BASIC_AUTH",
    "PUBLIC_URL",
    "BOOTSTRAP_ADMIN_KEY",
    "TIMEZONE",
}
NON_CALLPULSE_METRICS = {"up"}


def tool(name: str, package: str) -> str:
    """A Debian-packaged checker; missing: a skip locally, a failure under CI=true."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: `apt-get install -y {package}`"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


# --- promtool / amtool -------------------------------------------------------------------


def test_prometheus_rules_pass_promtool() -> None:
    promtool = tool("promtool", "prometheus")
    assert "SUCCESS" in run(promtool, "check", "rules", str(RULES))


def test_prometheus_config_passes_promtool() -> None:
    promtool = tool("promtool", "prometheus")
    assert "SUCCESS" in run(promtool, "check", "config", str(DEPLOY / "prometheus/prometheus.yml"))


def test_alert_rules_fire_on_made_up_series() -> None:
    promtool = tool("promtool", "prometheus")
    assert "SUCCESS" in run(promtool, "test", "rules", str(DEPLOY / "prometheus/rules.test.yml"))


def test_alertmanager_config_passes_amtool() -> None:
    amtool = tool("amtool", "prometheus-alertmanager")
    assert "SUCCESS" in run(amtool, "check-config", str(DEPLOY / "alertmanager/alertmanager.yml"))


# --- metric names --------------------------------------------------------------------------


def metric_names_in_code() -> set[str]:
    """Every metric the services can expose, found in their source.

    Literal names (`"callpulse_…"`) plus the business families that services/api/metrics.py
    builds as `<prefix>_<suffix>`: prefixes from `_families("callpulse_…"`, suffixes from SERIES
    (which follows the KPI declaration, schemas.kpis.KPI_SPECS).
    """
    sources = {p: p.read_text() for p in (ROOT / "services").rglob("*.py")}
    literals = {m for text in sources.values() for m in re.findall(r'"(callpulse_\w+)"', text)}
    api = (ROOT / "services/api/metrics.py").read_text()
    prefixes = set(re.findall(r'_families\(\s*"(callpulse_\w+)"', api))
    suffixes = {suffix for suffix, _help in SERIES.values()}
    assert prefixes == {"callpulse_team", "callpulse_rep"}
    assert {"dials", "connect_ratio", "conversion_ratio", "csat_average"} <= suffixes
    names = literals | {f"{p}_{s}" for p in prefixes for s in suffixes}
    exposed = set()
    for name in names:
        base = name.removesuffix("_total")  # prometheus_client adds `_total` to counters
        exposed |= {name, base, f"{base}_total", f"{base}_created"}
        exposed |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return exposed | NON_CALLPULSE_METRICS


def referenced(expr: str) -> set[str]:
    """The callpulse metric names a PromQL expression uses (and `up`)."""
    names = set(re.findall(r"\bcallpulse_[a-z0-9_]+\b", expr))
    return names | (NON_CALLPULSE_METRICS & set(re.findall(r"\b(\w+)\{", expr)))


def dashboard_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, dict) and "query" in value:
                yield str(value["query"])
            else:
                yield from dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_exprs(item)


def rule_exprs() -> list[tuple[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [
        (rule.get("alert") or rule["record"], rule["expr"])
        for group in doc["groups"]
        for rule in group["rules"]
    ]


def test_the_dashboard_uses_only_metrics_the_code_defines() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = metric_names_in_code()
    exprs = list(dashboard_exprs(dashboard))
    assert len(exprs) > 20
    for expr in exprs:
        used = referenced(expr)
        assert used, f"no callpulse metric in {expr!r}"
        assert used <= known, f"unknown metric {used - known} in {expr!r}"
    for metric in ("callpulse_team_dials", "callpulse_rep_dials", "callpulse_ingest_events_total"):
        assert any(metric in e for e in exprs), metric
    assert any("callpulse_aggregator_event_lag_seconds_bucket" in e for e in exprs)


def test_the_alert_rules_use_only_metrics_the_code_defines() -> None:
    known = metric_names_in_code()
    rules = rule_exprs()
    names = {name for name, _ in rules}
    assert {
        "CallpulseIngestUnavailable",
        "CallpulseIngestServerErrors",
        "CallpulseIngestPublishSlow",
        "CallpulseAggregatorEventLagHigh",
        "CallpulseApiConsumerLag",
        "CallpulseApiNotReady",
        "CallpulseTeamConversionBelowTarget",
    } <= names
    for name, expr in rules:
        used = referenced(expr)
        assert used, name
        assert used <= known, f"{name}: unknown metric {used - known}"


def load(path: str) -> Any:
    return yaml.safe_load((DEPLOY / path).read_text())


def test_the_dashboard_is_well_formed_and_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    source = load("grafana/provisioning/datasources/prometheus.yaml")
    uid = source["datasources"][0]["uid"]
    panels = dashboard["panels"]
    assert dashboard["uid"] == "callpulse-floor"
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid, panel["title"]
    kinds = {p["type"] for p in panels}
    assert {"stat", "table", "timeseries", "row"} <= kinds
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"team", "window"}
    provider = load("grafana/provisioning/dashboards/callpulse.yaml")
    path = provider["providers"][0]["options"]["path"]
    compose = load("compose.yaml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts


# --- compose, Kubernetes, Dockerfile ---------------------------------------------------------


def known_settings() -> set[str]:
    fields: set[str] = set()
    for settings in (ApiSettings, IngestSettings, AggregatorSettings):
        fields |= set(settings.model_fields)
    return {f"CALLPULSE_{name}" for name in fields}


def test_compose_runs_every_part_with_known_settings() -> None:
    services = load("compose.yaml")["services"]
    assert set(services) == {
        "kafka",
        "postgres",
        "ingest",
        "aggregator-1",
        "aggregator-2",
        "api",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    assert services["kafka"]["image"] == "apache/kafka:3.9.2"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    known = known_settings()
    for name in ("ingest", "aggregator-1", "aggregator-2", "api"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["command"][0] in ("ingest", "aggregator", "api")
        env = set(service["environment"])
        assert env <= known, f"{name}: unknown settings {env - known}"
        assert "CALLPULSE_KAFKA_BOOTSTRAP" in env
        assert "healthcheck" in service, name
    for name in ("ingest", "api"):
        assert "0.0.0.0" in services[name]["command"], name  # noqa: S104 - inside a container
    for service in services.values():
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and volume.startswith("./"):
                assert (DEPLOY / volume.split(":")[0]).exists(), volume


def k8s_documents() -> list[dict[str, Any]]:
    kustomization = load("k8s/kustomization.yaml")
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / "k8s" / resource).read_text()) if d]
    return docs


def test_kubernetes_manifests_probe_every_service_and_carry_the_settings() -> None:
    docs = k8s_documents()
    by_kind: dict[tuple[str, str], dict[str, Any]] = {
        (d["kind"], d["metadata"]["name"]): d for d in docs
    }
    workloads = {
        ("Deployment", "ingest"): 8001,
        ("Deployment", "api"): 8000,
        ("StatefulSet", "aggregator"): 6066,
    }
    for key, port in workloads.items():
        spec = by_kind[key]["spec"]["template"]["spec"]
        [container] = spec["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert list(ports.values()) == [port], key
        ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
        assert ready["path"] == "/readyz", key
        assert live["path"] == "/healthz", key
        assert ports[ready["port"]] == port
        assert ports[live["port"]] == port
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert ("Service", key[1]) in by_kind, f"no Service for {key}"
    assert by_kind[("Service", "aggregator")]["spec"]["clusterIP"] == "None"
    assert "partitions" in (DEPLOY / "k8s/aggregator.yaml").read_text().lower()

    config = by_kind[("ConfigMap", "callpulse-config")]["data"]
    secret = by_kind[("Secret", "callpulse-secrets")]["stringData"]
    names = set(config) | set(secret)
    assert names <= known_settings(), names - known_settings()
    assert {f"CALLPULSE_{n}" for n in DESIGN_SETTINGS} <= names
    # A made-up placeholder would be accepted as the secret: the template leaves them empty.
    for name in ("CALLPULSE_WEBHOOK_SECRET", "CALLPULSE_BOOTSTRAP_ADMIN_KEY"):
        assert secret[name] == "", name


def test_the_image_runs_callpulse_as_a_non_root_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert stages == ["python:3.11-slim", "python:3.11-slim"]
    assert re.search(r"^RUN pip install .*\s\.$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER 10001", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["callpulse"]' in dockerfile
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "callpulse" in project["project"]["scripts"]
    # The wallboard's files ship in the wheel the image installs.
    assert "static/*" in project["tool"]["setuptools"]["package-data"]["services.api"]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {"!schemas/", "!services/", "!pyproject.toml"} <= set(ignore)
