"""The settings each container of compose.yaml and k8s/ is given are accepted by its service,
once the user has filled in the secrets as deploy/README.md says (and refused while a required
secret is still missing, naming it)."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from services.aggregator.config import AggregatorSettings
from services.api.config import ApiSettings
from services.ingest.config import IngestSettings, MissingSecretsError
from tests.deploy.tools import DEPLOY, load, run, tool

SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "api": ApiSettings,
    "aggregator": AggregatorSettings,
    "topics": AggregatorSettings,  # `callpulse topics` reads the aggregator's settings
}
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
# What a user exports or writes into the secret files before starting (deploy/README.md).
USER = {
    "CALLPULSE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "CALLPULSE_BOOTSTRAP_ADMIN_KEY": "cp_" + "a" * 40,
    "POSTGRES_PASSWORD": "s3cret",
    "GRAFANA_ADMIN_PASSWORD": "s3cret",
    "CALLPULSE_DATABASE_URL": "postgresql://callpulse:s3cret@db.example:5432/callpulse",
    "CALLPULSE_KAFKA_SASL_PASSWORD": "s3cret",
}


def accepted(monkeypatch: pytest.MonkeyPatch, kind: str, env: dict[str, str]) -> BaseSettings:
    """The service's settings read from exactly `env` (nothing of this process's environment)."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("CALLPULSE_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return SETTINGS[kind]()


def interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` with the user's shell."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if shell.get(name):
            return shell[name]
        assert op != ":?", f"compose would stop: {arg}"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_compose_services_accept_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    services = load("compose.yaml")["services"]
    seen = set()
    for service in services.values():
        if "command" not in service or not str(service.get("image", "")).startswith("${CALLPULSE"):
            continue
        kind = service["command"][0]
        env = {k: interpolate(str(v), USER) for k, v in service["environment"].items()}
        settings = accepted(monkeypatch, kind, env)
        seen.add(kind)
        if isinstance(settings, IngestSettings):
            settings.require_production_secrets()
        if isinstance(settings, ApiSettings):
            assert settings.DATABASE_URL.startswith("postgresql+asyncpg://callpulse:s3cret@")
        assert settings.PARTITIONS == 4  # type: ignore[attr-defined]
    assert seen == set(SETTINGS)


def k8s_envs(path: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """Per workload: which service it runs and the environment its container gets."""
    docs = [
        d
        for d in yaml.safe_load_all(run(tool("kustomize", "`make deploy-tools`"), "build", path))
        if d
    ]
    maps: dict[str, dict[str, str]] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            maps[doc["metadata"]["name"]] = doc["data"]
        elif doc["kind"] == "Secret":
            data = doc.get("data") or {}
            maps[doc["metadata"]["name"]] = {
                k: base64.b64decode(v).decode() for k, v in data.items()
            }
    out = {}
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        [container] = doc["spec"]["template"]["spec"]["containers"]
        env: dict[str, str] = {}
        for ref in container["envFrom"]:
            [(_, target)] = ref.items()
            env.update(maps[target["name"]])
        env.update({e["name"]: e["value"] for e in container.get("env", [])})
        out[doc["metadata"]["name"]] = (container["args"][0], env)
    return out


def fill(copy: Path, *, secrets: dict[str, str]) -> None:
    """Make the secret files from the examples and put the user's values in."""
    for example in (copy / "secrets").glob("*.example"):
        text = example.read_text()
        for name, value in secrets.items():
            text = re.sub(rf"^#? ?{name}=.*$", f"{name}={value}", text, flags=re.MULTILINE)
        example.with_suffix("").write_text(text)


@pytest.mark.parametrize("sasl", [False, True], ids=["plaintext", "sasl-ssl"])
def test_kubernetes_workloads_accept_their_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sasl: bool
) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(DEPLOY / "k8s", copy, ignore=shutil.ignore_patterns("*.env"))
    if sasl:
        path = copy / "kustomization.yaml"
        path.write_text(
            path.read_text().replace(
                "# components:\n#   - components/kafka-sasl-ssl",
                "components:\n  - components/kafka-sasl-ssl",
            )
        )
    # as shipped: the examples copied, nothing filled in: refused, naming what is missing
    fill(copy, secrets={})
    envs = k8s_envs(copy)
    assert {kind for kind, _ in envs.values()} == set(SETTINGS)
    if sasl:
        for kind, env in envs.values():
            with pytest.raises(ValidationError, match="CALLPULSE_KAFKA_SASL_PASSWORD"):
                accepted(monkeypatch, kind, env)
    else:
        ingest = accepted(monkeypatch, *envs["ingest"])
        assert isinstance(ingest, IngestSettings)
        with pytest.raises(MissingSecretsError, match="CALLPULSE_WEBHOOK_SECRET"):
            ingest.require_production_secrets()
    # filled in as the README says (the SASL password only for a SASL cluster)
    secrets = {k: v for k, v in USER.items() if k.startswith("CALLPULSE_")}
    if not sasl:
        del secrets["CALLPULSE_KAFKA_SASL_PASSWORD"]
    fill(copy, secrets=secrets)
    mounted = tmp_path / "mounted"  # the CA Secret as the container sees it (its volumeMount)
    (mounted / "etc/callpulse/kafka-tls").mkdir(parents=True)
    (mounted / "etc/callpulse/kafka-tls/ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    for name, (kind, env) in k8s_envs(copy).items():
        if "CALLPULSE_KAFKA_SSL_CAFILE" in env:
            cafile = env["CALLPULSE_KAFKA_SSL_CAFILE"]
            assert cafile.startswith("/etc/callpulse/kafka-tls/"), name
            env["CALLPULSE_KAFKA_SSL_CAFILE"] = str(mounted) + cafile
        settings = accepted(monkeypatch, kind, env)
        if isinstance(settings, IngestSettings):
            settings.require_production_secrets()
        common: Any = settings
        assert common.PARTITIONS == 12, name
        protocol = "SASL_SSL" if sasl else "PLAINTEXT"
        assert protocol == common.KAFKA_SECURITY_PROTOCOL, name
        if sasl:
            assert common.KAFKA_SASL_PASSWORD.get_secret_value() == "s3cret", name
