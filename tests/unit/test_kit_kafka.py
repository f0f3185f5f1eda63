"""Kafka security settings: wrong combinations refused with one sentence; client and Faust
arguments made in one place; the topics each service needs."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import faust
import pytest
from pydantic import ValidationError

from services.aggregator.config import AggregatorSettings
from services.kit.kafka import (
    KafkaConnection,
    client_kwargs,
    connection,
    faust_kwargs,
    internal_topics,
    topic_plan,
)
from services.kit.settings import CommonSettings, load_or_exit


@pytest.fixture(autouse=True)
def _no_callpulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("CALLPULSE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a client certificate with its key (PEM), made with openssl."""
    home = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=home, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca",
        "-keyout", "ca.key", "-out", "ca.pem",
    )  # fmt: skip
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=client",
        "-keyout", "client.key", "-out", "client.pem",
    )  # fmt: skip
    return {"ca": home / "ca.pem", "cert": home / "client.pem", "key": home / "client.key"}


SCRAM = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "callpulse",
    "KAFKA_SASL_PASSWORD": "s3cret",
}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "CALLPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs CALLPULSE_KAFKA_SASL_MECHANISM, "
            "CALLPULSE_KAFKA_SASL_USERNAME, CALLPULSE_KAFKA_SASL_PASSWORD",
        ),
        (
            {**SCRAM, "KAFKA_SASL_PASSWORD": None},
            "SASL_PLAINTEXT needs CALLPULSE_KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SASL_USERNAME": "callpulse"},
            "CALLPULSE_KAFKA_SASL_USERNAME set but CALLPULSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT: "
            "use SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "CALLPULSE_KAFKA_SSL_CAFILE set but CALLPULSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "CALLPULSE_KAFKA_SSL_CAFILE=/nonexistent/ca.pem is not a readable file",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/nonexistent/key.pem"},
            "CALLPULSE_KAFKA_SSL_KEYFILE needs CALLPULSE_KAFKA_SSL_CERTFILE",
        ),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"REPLICATION_FACTOR": 0}, "must be -1 (the broker's default) or >= 1"),
    ],
)
def test_a_wrong_combination_is_one_clear_error(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CommonSettings(**settings)
    assert len(caught.value.errors()) == 1
    assert message in str(caught.value)


def test_plaintext_by_default_is_the_bare_bootstrap() -> None:
    conn = connection(CommonSettings(KAFKA_BOOTSTRAP="k1:9092,k2:9092"))
    assert conn.kwargs() == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert client_kwargs("k1:9092") == {"bootstrap_servers": "k1:9092"}
    assert client_kwargs(conn) == conn.kwargs()


def test_sasl_ssl_gives_aiokafka_and_faust_the_same_credentials(
    tls: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        **SCRAM,
        "KAFKA_BOOTSTRAP": "k1:9093,k2:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SSL_CAFILE": str(tls["ca"]),
        "KAFKA_SSL_CERTFILE": str(tls["cert"]),
        "KAFKA_SSL_KEYFILE": str(tls["key"]),
        "REPLICATION_FACTOR": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"CALLPULSE_{name}", value)
    settings = AggregatorSettings()
    assert settings.KAFKA_SASL_PASSWORD is not None
    assert "s3cret" not in repr(settings)  # a SecretStr
    kwargs = connection(settings).kwargs()
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "bootstrap_servers": "k1:9093,k2:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "callpulse",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED

    app = faust_kwargs(settings)
    assert app["broker"] == "kafka://k1:9093;kafka://k2:9093"
    assert app["topic_replication_factor"] == 3
    credentials = app["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("callpulse", "s3cret")


def test_ssl_without_sasl_and_hostname_checks_off(tls: dict[str, Path]) -> None:
    settings = CommonSettings(
        KAFKA_BOOTSTRAP="k1:9093",
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=tls["ca"],
        KAFKA_SSL_CHECK_HOSTNAME=False,
    )
    conn = connection(settings)
    assert not conn.security["ssl_context"].check_hostname
    assert "sasl_mechanism" not in conn.security
    credentials = faust_kwargs(settings)["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)
    assert faust_kwargs(settings)["topic_replication_factor"] == 1  # -1: Faust needs a number


def test_a_file_that_is_not_a_certificate_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    settings = CommonSettings(
        KAFKA_BOOTSTRAP="k1:9093", KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=bogus
    )
    with pytest.raises(ValueError, match="the Kafka TLS files could not be loaded"):
        connection(settings)


def test_each_service_checks_the_topics_it_uses() -> None:
    s = CommonSettings(PARTITIONS=6)
    plan = {spec.name: spec for spec in topic_plan(s)}
    assert {
        s.EVENTS_TOPIC,
        s.FACTS_TOPIC,
        s.KPIS_TOPIC,
        s.CALLS_TOPIC,
        s.ALERTS_TOPIC,
        s.ROSTER_TOPIC,
    } <= set(plan)
    assert {n for n, spec in plan.items() if spec.compacted} == {
        s.KPIS_TOPIC,
        s.CALLS_TOPIC,
        s.ROSTER_TOPIC,
    }
    assert {spec.partitions for spec in plan.values()} == {6}
    assert [t.name for t in topic_plan(s, "ingest")] == [s.EVENTS_TOPIC]
    assert {t.name for t in topic_plan(s, "api")} == {
        s.KPIS_TOPIC,
        s.CALLS_TOPIC,
        s.ALERTS_TOPIC,
        s.ROSTER_TOPIC,
    }
    own = internal_topics(s, "agg")
    assert [(t.name, t.partitions, t.compacted) for t in own] == [
        ("agg-calls-changelog", 6, True),
        ("agg-reps-changelog", 6, True),
        ("agg-__assignor-__leader", 1, False),
    ]
    assert topic_plan(s, app_id="agg")[-3:] == own
    assert isinstance(connection(s, "k:1"), KafkaConnection)


def test_a_wrong_setting_stops_a_command_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPULSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(SystemExit) as caught:
        load_or_exit(AggregatorSettings, "aggregator")
    assert str(caught.value) == (
        "callpulse aggregator: CALLPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs "
        "CALLPULSE_KAFKA_SASL_MECHANISM, CALLPULSE_KAFKA_SASL_USERNAME, "
        "CALLPULSE_KAFKA_SASL_PASSWORD"
    )
    monkeypatch.setenv("CALLPULSE_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(SystemExit, match=r"^callpulse ingest: CALLPULSE_KAFKA_SECURITY_PROTOCOL: "):
        load_or_exit(CommonSettings, "ingest")


def test_blank_kafka_settings_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD", "SSL_CAFILE", "SSL_KEYFILE"):
        monkeypatch.setenv(f"CALLPULSE_KAFKA_{name}", "")
    monkeypatch.setenv("CALLPULSE_KAFKA_SSL_CERTFILE", "")
    monkeypatch.setenv("CALLPULSE_MIN_INSYNC_REPLICAS", "")
    settings = CommonSettings(KAFKA_BOOTSTRAP="k1:9092")
    assert settings.KAFKA_SSL_CAFILE is None
    assert settings.KAFKA_SASL_PASSWORD is None
    assert settings.MIN_INSYNC_REPLICAS is None
    assert connection(settings).kwargs() == {
        "bootstrap_servers": "k1:9092",
        "security_protocol": "PLAINTEXT",
    }
