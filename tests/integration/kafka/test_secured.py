"""The distributed services over SASL_SSL with SCRAM-SHA-512 and a client certificate (a broker
of the test's own that requires both; kafka.sh generates its CA, certificates and SCRAM user),
and the refusals a wrong password, an untrusted broker certificate or a missing client
certificate get at start."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import certifi
import pytest

from tests.e2e.scenario import (
    ADMIN_KEY,
    ROOT,
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
from tests.integration.kafka.cluster import LocalKafka, local_kafka

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    home = tmp_path_factory.mktemp("kafka-sasl")
    with local_kafka(home, sasl_ssl=True, client_auth="required") as kafka:
        yield kafka


def callpulse(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `callpulse ARGS` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_services_run_end_to_end_over_sasl_ssl_with_scram_sha_512_and_mtls(
    secured: LocalKafka, postgres_url: str, tmp_path: Path
) -> None:
    run = f"sasl{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    env = {
        **secured.sasl_env(),
        **{f"CALLPULSE_{n}_TOPIC": f"{run}.{n.lower()}" for n in ("EVENTS", "FACTS", "KPIS")},
        **{f"CALLPULSE_{n}_TOPIC": f"{run}.{n.lower()}" for n in ("CALLS", "ALERTS", "ROSTER")},
        "CALLPULSE_CREATE_TOPICS": "false",  # the production way: `topics create` first
        "CALLPULSE_DATABASE_URL": postgres_url,
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": tz,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CALLPULSE_APP_ID": f"{run}-aggregator",
        "CALLPULSE_PARTITIONS": "2",
        "CALLPULSE_WEB_PORT": str(free_port()),
        "CALLPULSE_DATA_DIR": str(tmp_path / "faust"),
        "CALLPULSE_CONSUMER_GROUP_PREFIX": run,
    }
    created = callpulse(["topics", "create"], env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines()[-1].endswith(" topics are as callpulse needs them")

    ingest_port, api_port = free_port(), free_port()
    ingest_url, api_url = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
    events, batches = scenario(run, now)
    want = expected(events, now, tz)
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


def test_a_wrong_password_is_refused_at_start_with_one_clear_line(secured: LocalKafka) -> None:
    result = callpulse(["ingest", "--port", "1"], secured.sasl_env(password="not-the-password"))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"callpulse ingest: Kafka at {secured.sasl_bootstrap}: SASL ")
    assert "SaslAuthenticationFailed" in line
    assert "check CALLPULSE_KAFKA_SASL_USERNAME, CALLPULSE_KAFKA_SASL_PASSWORD" in line


def test_an_untrusted_certificate_is_refused_at_start_with_one_clear_line(
    secured: LocalKafka,
) -> None:
    # The public CAs of certifi never signed the certificate kafka.sh made.
    result = callpulse(["aggregator"], secured.sasl_env(ca=Path(certifi.where())))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"callpulse aggregator: Kafka at {secured.sasl_bootstrap}: TLS ")
    assert "CERTIFICATE_VERIFY_FAILED" in line
    assert "check CALLPULSE_KAFKA_SSL_CAFILE" in line


def test_a_missing_client_certificate_is_refused_at_start_with_one_clear_line(
    secured: LocalKafka,
) -> None:
    result = callpulse(["api", "--port", "1"], secured.sasl_env(client_cert=False))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"callpulse api: Kafka at {secured.sasl_bootstrap}: TLS ")
    assert "CALLPULSE_KAFKA_SSL_CERTFILE" in line
