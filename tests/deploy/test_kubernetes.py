"""deploy/k8s: `kustomize build` (with and without the SASL_SSL component) gives manifests the
Kubernetes schemas accept (kubernetes-validate, strict), each workload gets only its own
settings and secrets, no secret value ships, and disruption budgets and network policies cover
every service."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no py.typed
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from tests.deploy.tools import DEPLOY, ROOT, known_settings, run, tool

K8S = DEPLOY / "k8s"
WORKLOADS = {
    ("Deployment", "ingest"): 8001,
    ("Deployment", "api"): 8000,
    ("StatefulSet", "aggregator"): 6066,
}
# The oldest Kubernetes the manifests are for, and the newest the validator knows.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
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
KAFKA_SECURITY = {
    "CALLPULSE_KAFKA_SECURITY_PROTOCOL",
    "CALLPULSE_KAFKA_SASL_MECHANISM",
    "CALLPULSE_KAFKA_SASL_USERNAME",
    "CALLPULSE_KAFKA_SSL_CAFILE",
    "CALLPULSE_REPLICATION_FACTOR",
}


def kustomize() -> str:
    return tool("kustomize", "`make deploy-tools` (go install into .cache/deploy-tools/bin)")


def as_user_would(tmp_path: Path, *, sasl: bool = False) -> Path:
    """deploy/k8s copied, with the secret files made from the examples as the README says."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("*.env"))
    for example in (copy / "secrets").glob("*.example"):
        shutil.copy(example, example.with_suffix(""))
    if sasl:
        kustomization = copy / "kustomization.yaml"
        text = kustomization.read_text()
        enabled = text.replace(
            "# components:\n#   - components/kafka-sasl-ssl",
            "components:\n  - components/kafka-sasl-ssl",
        )
        assert enabled != text
        kustomization.write_text(enabled)
    return copy


def build(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(run(kustomize(), "build", path)) if d]
    for doc in docs:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    return docs


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    docs = build(as_user_would(tmp_path_factory.mktemp("plain")))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.fixture(scope="module")
def built_sasl(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    docs = build(as_user_would(tmp_path_factory.mktemp("sasl"), sasl=True))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def refs(doc: dict[str, Any], kind: str) -> set[str]:
    """Names of the ConfigMaps or Secrets a workload's container reads, hash suffix removed."""
    [container] = pod(doc)["containers"]
    return {
        ref[kind]["name"].rsplit("-", 1)[0] if kind == "secretRef" else ref[kind]["name"]
        for ref in container["envFrom"]
        if kind in ref
    }


def data(doc: dict[str, Any]) -> dict[str, str]:
    if doc["kind"] == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    out: dict[str, str] = doc["data"]
    return out


def named(built: dict[tuple[str, str], dict[str, Any]], kind: str, prefix: str) -> dict[str, Any]:
    [doc] = [d for (k, n), d in built.items() if k == kind and n.startswith(prefix)]
    return doc


def test_kustomize_builds_manifests_the_kubernetes_schemas_accept(
    built: dict[tuple[str, str], dict[str, Any]],
    built_sasl: dict[tuple[str, str], dict[str, Any]],
) -> None:
    kinds = {kind for kind, _ in built}
    assert {"Deployment", "StatefulSet", "Job", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert set(built_sasl) == set(built)
    broken = dict(built[("Job", "topics")], spek={})
    with pytest.raises(kubernetes_validate.ValidationError):  # strict: a typo is refused
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_kustomize_refuses_to_build_before_the_secret_files_exist(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("*.env"))
    done = subprocess.run(
        [kustomize(), "build", str(copy)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "secrets/" in done.stderr
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/k8s/secrets/api.env"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "git must ignore the real secret files"


def test_every_service_is_probed_and_non_root(
    built: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for key, port in WORKLOADS.items():
        spec = pod(built[key])
        [container] = spec["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert list(ports.values()) == [port], key
        ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
        assert (ready["path"], live["path"]) == ("/readyz", "/healthz"), key
        assert ports[ready["port"]] == port
        assert ports[live["port"]] == port
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert ("Service", key[1]) in built, f"no Service for {key}"
    assert built[("Service", "aggregator")]["spec"]["clusterIP"] == "None"


def test_each_workload_reads_only_its_own_settings_and_secrets(
    built: dict[tuple[str, str], dict[str, Any]],
) -> None:
    expected = {
        ("Deployment", "ingest"): (
            {"callpulse-config", "callpulse-ingest-config"},
            {"callpulse-ingest", "callpulse-kafka"},
        ),
        ("Deployment", "api"): (
            {"callpulse-config", "callpulse-api-config"},
            {"callpulse-api", "callpulse-kafka"},
        ),
        ("StatefulSet", "aggregator"): ({"callpulse-config"}, {"callpulse-kafka"}),
        ("Job", "topics"): ({"callpulse-config"}, {"callpulse-kafka"}),
    }
    for key, (configs, secrets) in expected.items():
        assert refs(built[key], "configMapRef") == configs, key
        assert refs(built[key], "secretRef") == secrets, key
    ingest = data(named(built, "Secret", "callpulse-ingest"))
    api = data(named(built, "Secret", "callpulse-api"))
    assert "CALLPULSE_WEBHOOK_SECRET" in ingest
    assert "CALLPULSE_TWILIO_AUTH_TOKEN" in ingest
    assert set(api) == {"CALLPULSE_DATABASE_URL", "CALLPULSE_BOOTSTRAP_ADMIN_KEY"}
    names: set[str] = set()
    for (kind, _), doc in built.items():
        if kind in ("ConfigMap", "Secret"):
            names |= set(data(doc))
    assert names <= known_settings(), names - known_settings()
    assert {f"CALLPULSE_{n}" for n in DESIGN_SETTINGS} <= names


def test_no_secret_value_or_placeholder_ships(
    built: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """The examples leave every secret empty: a made-up placeholder would be accepted as the
    secret (and a password in git is a leak)."""
    for (kind, name), doc in built.items():
        if kind == "Secret":
            assert all(value == "" for value in data(doc).values()), name
    for path in K8S.rglob("*"):
        if path.is_file() and not path.name.endswith(".env"):
            lines = path.read_text().lower().splitlines()
            values = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
            for word in ("replace-with", "changeme", "password@", "placeholder"):
                assert word not in values, f"{path}: {word}"


def test_ingest_and_api_have_their_own_public_urls(
    built: dict[tuple[str, str], dict[str, Any]],
) -> None:
    ingest = data(built[("ConfigMap", "callpulse-ingest-config")])["CALLPULSE_PUBLIC_URL"]
    api = data(built[("ConfigMap", "callpulse-api-config")])["CALLPULSE_PUBLIC_URL"]
    assert ingest.startswith("https://")
    assert api.startswith("https://")
    assert ingest != api
    assert "CALLPULSE_PUBLIC_URL" not in data(built[("ConfigMap", "callpulse-config")])


def test_disruption_budgets_and_network_policies_cover_every_service(
    built: dict[tuple[str, str], dict[str, Any]],
) -> None:
    budgets = [d for (k, _), d in built.items() if k == "PodDisruptionBudget"]
    policies = [d for (k, _), d in built.items() if k == "NetworkPolicy"]
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies)
    for key, port in WORKLOADS.items():
        workload = built[key]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["replicas"] >= 2, key

        def selects(selector: dict[str, Any], labels: dict[str, str] = labels) -> bool:
            wanted = selector.get("matchLabels", {})
            return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())

        [budget] = [b for b in budgets if selects(b["spec"]["selector"])]
        assert budget["spec"]["maxUnavailable"] == 1, key
        [policy] = [p for p in policies if selects(p["spec"]["podSelector"])]
        allowed = {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
        assert allowed == {port}, key


def test_a_job_creates_the_topics(built: dict[tuple[str, str], dict[str, Any]]) -> None:
    job = built[("Job", "topics")]
    [container] = pod(job)["containers"]
    assert container["args"] == ["topics", "create"]
    assert (
        container["image"]
        == built[("Deployment", "api")]["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert job["spec"]["ttlSecondsAfterFinished"] > 0  # the next apply runs it again
    config = data(built[("ConfigMap", "callpulse-config")])
    assert config["CALLPULSE_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert "CALLPULSE_REPLICATION_FACTOR" in config


def test_the_sasl_ssl_component_sets_kafka_security_and_mounts_the_ca(
    built_sasl: dict[tuple[str, str], dict[str, Any]],
) -> None:
    config = data(built_sasl[("ConfigMap", "callpulse-config")])
    assert set(config) >= KAFKA_SECURITY
    assert set(config) <= known_settings()
    assert config["CALLPULSE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["CALLPULSE_REPLICATION_FACTOR"] == "3"
    cafile = Path(config["CALLPULSE_KAFKA_SSL_CAFILE"])
    for key in (*WORKLOADS, ("Job", "topics")):
        spec = pod(built_sasl[key])
        [volume] = [v for v in spec["volumes"] if v["name"] == "kafka-tls"]
        assert volume["secret"]["secretName"] == "callpulse-kafka-tls"
        assert volume["secret"]["defaultMode"] == 0o444  # readable by uid 10001
        [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "kafka-tls"]
        assert mount["readOnly"] is True
        assert cafile.parent == Path(mount["mountPath"]), key
    example = (K8S / "secrets" / "kafka.env.example").read_text()
    assert "# CALLPULSE_KAFKA_SASL_PASSWORD=" in example
