"""deploy/compose.yaml: valid against the Compose Specification's JSON Schema, one image build,
the topics init service before the services, each service given only its settings."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # stubs are a separate package

from tests.deploy.tools import DEPLOY, HERE, known_settings, load

CALLPULSE = ("ingest", "aggregator-1", "aggregator-2", "api")


def services() -> dict[str, Any]:
    out: dict[str, Any] = load("compose.yaml")["services"]
    return out


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((HERE / "vendor" / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(load("compose.yaml"))]
    assert errors == []
    # the schema has teeth: an unknown key in a service is refused
    broken = load("compose.yaml")
    broken["services"]["api"]["enviroment"] = {}
    assert list(validator.iter_errors(broken))


def test_the_image_is_built_once_and_reused_by_name() -> None:
    all_services = services()
    builders = [name for name, s in all_services.items() if "build" in s]
    assert builders == ["topics"]
    image = all_services["topics"]["image"]
    build = all_services["topics"]["build"]
    assert build["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for name in CALLPULSE:
        assert all_services[name]["image"] == image, name


def test_the_topics_init_service_runs_before_every_callpulse_service() -> None:
    all_services = services()
    topics = all_services["topics"]
    assert topics["command"] == ["topics", "create"]
    assert topics["restart"] == "no"
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in CALLPULSE:
        depends = all_services[name]["depends_on"]
        assert depends["topics"]["condition"] == "service_completed_successfully", name
    kafka = all_services["kafka"]["environment"]
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_each_service_gets_only_its_own_settings_and_secrets() -> None:
    all_services = services()
    known = known_settings()
    for name in (*CALLPULSE, "topics"):
        service = all_services[name]
        env = set(service["environment"])
        assert env <= known, f"{name}: unknown settings {env - known}"
        assert "CALLPULSE_KAFKA_BOOTSTRAP" in env, name
        # Kafka security (SASL password, TLS files) for every client, from one optional file
        assert service["env_file"] == [{"path": "./kafka.env", "required": False}], name
        assert "./kafka-tls:/etc/callpulse/kafka-tls:ro" in service["volumes"], name
    for name in CALLPULSE:
        assert "healthcheck" in all_services[name], name
        assert all_services[name]["command"][0] in ("ingest", "aggregator", "api")
    ingest = set(all_services["ingest"]["environment"])
    api = set(all_services["api"]["environment"])
    aggregator = set(all_services["aggregator-1"]["environment"])
    assert "CALLPULSE_WEBHOOK_SECRET" in ingest - api - aggregator
    assert {"CALLPULSE_DATABASE_URL", "CALLPULSE_BOOTSTRAP_ADMIN_KEY"} <= api - ingest - aggregator
    # ingest and api each have their own public URL (provider signatures vs alert links)
    assert "INGEST_PUBLIC_URL" in all_services["ingest"]["environment"]["CALLPULSE_PUBLIC_URL"]
    assert "API_PUBLIC_URL" in all_services["api"]["environment"]["CALLPULSE_PUBLIC_URL"]
    for name in ("ingest", "api"):
        assert "0.0.0.0" in all_services[name]["command"], name  # noqa: S104 - in a container
    example = (DEPLOY / "kafka.env.example").read_text()
    for setting in (
        "SECURITY_PROTOCOL",
        "SASL_MECHANISM",
        "SASL_USERNAME",
        "SASL_PASSWORD",
        "SSL_CAFILE",
        "SSL_CERTFILE",
        "SSL_KEYFILE",
    ):
        assert f"# CALLPULSE_KAFKA_{setting}=" in example, setting
    assert (DEPLOY / "kafka-tls").is_dir()


def test_compose_mounts_exist_and_kafka_is_the_tested_version() -> None:
    all_services = services()
    assert all_services["kafka"]["image"] == "apache/kafka:3.9.2"
    assert all_services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for service in all_services.values():
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and volume.startswith("./"):
                assert (DEPLOY / volume.split(":")[0]).exists(), volume
