"""deploy/prometheus and deploy/alertmanager: promtool and amtool accept them, the rules' unit
tests pass, the rules use only metrics the code defines, and the label the rules match services
on is set by both the compose and the Kubernetes scrape configurations."""

from __future__ import annotations

import re
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from tests.deploy.tools import DEPLOY, load, metric_names_in_code, referenced, run, tool

RULES = DEPLOY / "prometheus" / "rules.yml"
SERVICES = ("ingest", "aggregator", "api")


def promtool() -> str:
    return tool("promtool", "`apt-get install -y prometheus` (deploy/local/apt-deps.sh)")


def test_prometheus_rules_pass_promtool() -> None:
    assert "SUCCESS" in run(promtool(), "check", "rules", RULES)


def test_prometheus_config_passes_promtool() -> None:
    assert "SUCCESS" in run(promtool(), "check", "config", DEPLOY / "prometheus/prometheus.yml")


def test_alert_rules_fire_on_made_up_series() -> None:
    """rules.test.yml: among others, Stalled with workers that never counted an event, Down on
    compose and Kubernetes targets alike, and Absent when a service has no target at all."""
    assert "SUCCESS" in run(promtool(), "test", "rules", DEPLOY / "prometheus/rules.test.yml")
    tested = {
        case["alertname"]
        for group in load("prometheus/rules.test.yml")["tests"]
        for case in group["alert_rule_test"]
    }
    for service in ("Ingest", "Aggregator", "Api"):
        assert {f"Callpulse{service}Down", f"Callpulse{service}Absent"} <= tested
    assert "CallpulseAggregatorStalled" in tested


def test_alertmanager_config_passes_amtool() -> None:
    amtool = tool("amtool", "`apt-get install -y prometheus-alertmanager`")
    assert "SUCCESS" in run(amtool, "check-config", DEPLOY / "alertmanager/alertmanager.yml")


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_alert_rules_use_only_metrics_the_code_defines() -> None:
    known = metric_names_in_code()
    names = {rule.get("alert") or rule["record"] for rule in rules()}
    assert {
        "CallpulseIngestUnavailable",
        "CallpulseIngestServerErrors",
        "CallpulseIngestPublishSlow",
        "CallpulseAggregatorEventLagHigh",
        "CallpulseAggregatorStalled",
        "CallpulseApiConsumerLag",
        "CallpulseApiNotReady",
        "CallpulseTeamConversionBelowTarget",
    } <= names
    for rule in rules():
        used = referenced(rule["expr"])
        assert used, rule
        assert used <= known, f"{rule.get('alert')}: unknown metric {used - known}"


def test_no_rule_depends_on_a_job_name() -> None:
    """Job names are the compose ones (callpulse-ingest…) or the Kubernetes one
    (kubernetes-pods): a rule matching on `job` fires in one of the two deployments only."""
    for rule in rules():
        assert "job" not in rule["expr"], rule["alert"]
    down = {r["alert"]: r["expr"] for r in rules() if r["alert"].endswith(("Down", "Absent"))}
    assert len(down) == 6
    for service in SERVICES:
        matcher = f'up{{app_kubernetes_io_name="callpulse-{service}"}}'
        assert sum(matcher in expr for expr in down.values()) == 2, service
        assert any(expr.startswith("absent(") and matcher in expr for expr in down.values())


def test_compose_scrape_targets_carry_the_service_label() -> None:
    jobs = {job["job_name"]: job for job in load("prometheus/prometheus.yml")["scrape_configs"]}
    for service in SERVICES:
        [static] = jobs[f"callpulse-{service}"]["static_configs"]
        assert static["labels"] == {"app_kubernetes_io_name": f"callpulse-{service}"}


def relabel(config: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabelling (keep, replace, labelmap), enough for kubernetes.yml; None when
    the target is dropped. Debian's promtool is built without Kubernetes service discovery, so
    `promtool check config` cannot read that file."""
    labels = dict(labels)
    for step in config:
        action = step.get("action", "replace")
        regex = re.compile(f"^(?:{step.get('regex', '(.*)')})$")
        if action == "labelmap":
            replacement = step.get("replacement", "$1").replace("$", "\\")
            for name, value in list(labels.items()):
                if regex.match(name):
                    labels[regex.sub(replacement, name)] = value
            continue
        value = step.get("separator", ";").join(labels.get(s, "") for s in step["source_labels"])
        match = regex.match(value)
        if action == "keep":
            if not match:
                return None
        elif action == "replace" and match:
            replacement = step.get("replacement", "$1")
            labels[step["target_label"]] = match.expand(re.sub(r"\$(\d)", r"\\\1", replacement))
        else:
            assert action == "replace", action
    return labels


def test_kubernetes_pod_scraping_labels_the_pods_as_the_rules_expect() -> None:
    config = load("prometheus/kubernetes.yml")
    assert config["rule_files"] == ["rules.yml"]
    [job] = config["scrape_configs"]
    pods = {
        doc["metadata"]["name"]: doc["spec"]["template"]
        for path in ("ingest.yaml", "aggregator.yaml", "api.yaml")
        for doc in yaml.safe_load_all((DEPLOY / "k8s" / path).read_text())
        if doc["kind"] in ("Deployment", "StatefulSet")
    }
    assert set(pods) == set(SERVICES)
    for name, template in pods.items():
        meta = {
            "__address__": "10.0.0.9:1234",
            "__meta_kubernetes_namespace": "callpulse",
            "__meta_kubernetes_pod_name": f"{name}-0",
        }
        for key, value in template["metadata"]["annotations"].items():
            meta["__meta_kubernetes_pod_annotation_" + re.sub(r"\W", "_", key)] = value
        for key, value in template["metadata"]["labels"].items():
            meta["__meta_kubernetes_pod_label_" + re.sub(r"\W", "_", key)] = value
        target = relabel(job["relabel_configs"], meta)
        assert target is not None, name
        assert target["app_kubernetes_io_name"] == f"callpulse-{name}"
        port = template["spec"]["containers"][0]["ports"][0]["containerPort"]
        assert target["__address__"] == f"10.0.0.9:{port}"
        assert target["__metrics_path__"] == "/metrics"
    unannotated = {"__address__": "10.0.0.9:80", "__meta_kubernetes_pod_label_app": "x"}
    assert relabel(job["relabel_configs"], unannotated) is None
