"""`callpulse topics create/check` on the real broker, and services that refuse to start
against a missing topic or a wrong partition count, with one line saying how to fix it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.kit.kafka import ensure_topics
from tests.e2e.scenario import ROOT
from tests.integration.kafka.cluster import LocalKafka, free_block

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

NAMES = ("EVENTS", "FACTS", "KPIS", "CALLS", "ALERTS", "ROSTER", "DEAD_LETTERS")


def topics_env(run: str) -> dict[str, str]:
    return {f"CALLPULSE_{name}_TOPIC": f"{run}.{name.lower()}" for name in NAMES}


def callpulse(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `callpulse ARGS` to its end (a service that starts would hit the timeout)."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={**os.environ, "CALLPULSE_CREATE_TOPICS": "false", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def topic_configs(bootstrap: str, name: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        [resource] = response.resources
        return {entry[0]: entry[1] for entry in resource[4]}
    finally:
        await admin.close()


def test_topics_create_makes_every_topic_and_check_agrees(kafka_bootstrap: str) -> None:
    run = f"tc{uuid.uuid4().hex[:8]}"
    env = {
        **topics_env(run),
        "CALLPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CALLPULSE_APP_ID": f"{run}-agg",
        "CALLPULSE_PARTITIONS": "3",
        "CALLPULSE_MIN_INSYNC_REPLICAS": "1",
    }
    before = callpulse(["topics", "check"], env)
    assert before.returncode == 1
    assert f"topic {run}.events is missing; run `callpulse topics create`" in before.stderr

    created = callpulse(["topics", "create"], env)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    made = [line for line in lines if line.startswith("created")]
    assert len(made) >= 9  # the services' topics, Faust's changelogs and leader topic
    assert f"created  {run}.events (3 partitions)" in made
    assert f"created  {run}.kpis (3 partitions, compacted)" in made
    assert f"created  {run}-agg-reps-changelog (3 partitions, compacted)" in made
    assert f"created  {run}-agg-__assignor-__leader (1 partition)" in made
    assert lines[-1] == f"all {len(made)} topics are as callpulse needs them"

    again = callpulse(["topics", "create"], env)
    assert again.returncode == 0, again.stderr
    assert sum(line.startswith("exists") for line in again.stdout.splitlines()) == len(made)
    assert callpulse(["topics", "check"], env).returncode == 0

    kpis = asyncio.run(topic_configs(kafka_bootstrap, f"{run}.kpis"))
    assert kpis["cleanup.policy"] == "compact"
    assert kpis["min.insync.replicas"] == "1"
    changelog = asyncio.run(topic_configs(kafka_bootstrap, f"{run}-agg-reps-changelog"))
    assert changelog["cleanup.policy"] == "compact"
    events = asyncio.run(topic_configs(kafka_bootstrap, f"{run}.events"))
    assert events["cleanup.policy"] == "delete"


@pytest.mark.parametrize("service", ["ingest", "api"])
def test_a_service_started_against_a_missing_topic_exits_with_one_line(
    kafka_bootstrap: str, postgres_url: str, service: str
) -> None:
    run = f"tm{uuid.uuid4().hex[:8]}"
    env = {
        **topics_env(run),
        "CALLPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CALLPULSE_DATABASE_URL": postgres_url,
        "CALLPULSE_WEBHOOK_SECRET": "",
    }
    result = callpulse([service, "--port", "1"], env)  # never reached: port 1 is privileged
    assert result.returncode == 1
    missing = f"{run}.events" if service == "ingest" else f"{run}.kpis"
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"callpulse {service}: topic {missing} is missing; run `callpulse topics create`"
        + ("" if service == "ingest" else " (and 3 more)")
    ]


def test_the_aggregator_refuses_a_topic_with_the_wrong_partition_count(
    kafka_bootstrap: str,
) -> None:
    run = f"tp{uuid.uuid4().hex[:8]}"
    env = topics_env(run)
    asyncio.run(ensure_topics(kafka_bootstrap, env.values(), partitions=2))
    result = callpulse(
        ["aggregator"],
        {
            **env,
            "CALLPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "CALLPULSE_APP_ID": f"{run}-agg",
            "CALLPULSE_PARTITIONS": "3",
        },
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"callpulse aggregator: topic {run}.events has 2 partitions, callpulse needs 3: set "
        "CALLPULSE_PARTITIONS=2, or delete the topic and run `callpulse topics create` (and "
    )


def test_the_api_refuses_a_kpis_topic_that_is_not_compacted(
    kafka_bootstrap: str, postgres_url: str
) -> None:
    run = f"tk{uuid.uuid4().hex[:8]}"
    env = topics_env(run)
    asyncio.run(ensure_topics(kafka_bootstrap, env.values(), partitions=2))  # none compacted
    result = callpulse(
        ["api", "--port", "1"],
        {
            **env,
            "CALLPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "CALLPULSE_DATABASE_URL": postgres_url,
            "CALLPULSE_PARTITIONS": "2",
        },
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"callpulse api: topic {run}.kpis has cleanup.policy=delete, callpulse needs compact: "
        "set it (kafka-configs --alter --add-config cleanup.policy=compact), or delete the topic "
        "and run `callpulse topics create` (and 2 more)"
    ]


def test_ingest_refuses_a_topic_with_fewer_replicas_than_asked(kafka_bootstrap: str) -> None:
    run = f"tr{uuid.uuid4().hex[:8]}"
    env = topics_env(run)
    asyncio.run(ensure_topics(kafka_bootstrap, [env["CALLPULSE_EVENTS_TOPIC"]], partitions=4))
    result = callpulse(
        ["ingest", "--port", "1"],
        {
            **env,
            "CALLPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "CALLPULSE_REPLICATION_FACTOR": "3",
            "CALLPULSE_WEBHOOK_SECRET": "",
        },
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"callpulse ingest: topic {run}.events has 1 replicas, CALLPULSE_REPLICATION_FACTOR asks "
        "for 3: reassign its partitions, or delete the topic and run `callpulse topics create`"
    ]


def test_topics_create_waits_for_a_cluster_that_is_still_starting(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "kafka", free_block(3), brokers=1, sasl_ssl=False)
    run = f"tw{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **topics_env(run),
        "CALLPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "CALLPULSE_APP_ID": f"{run}-agg",
    }
    creating = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "topics", "create"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        kafka.script("start")  # nothing listened when `topics create` began
        out, err = creating.communicate(timeout=120)
    finally:
        creating.kill()
        kafka.script("stop")
    assert creating.returncode == 0, err
    assert out.splitlines()[-1].endswith(" topics are as callpulse needs them")
