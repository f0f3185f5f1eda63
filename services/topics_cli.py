"""`callpulse topics`: create or check every Kafka topic callpulse uses.

The cluster and the topics come from the same `CALLPULSE_*` settings the services read
(KAFKA_BOOTSTRAP and the KAFKA_SECURITY_* settings, the *_TOPIC names, PARTITIONS,
REPLICATION_FACTOR, MIN_INSYNC_REPLICAS, APP_ID for the aggregator's changelogs). The services
only check their topics at start, so this runs first: `make up`, compose's init service and the
Kubernetes Job.
"""

from __future__ import annotations

import asyncio

import typer

from services.aggregator.config import AggregatorSettings
from services.kit.kafka import (
    KafkaSetupError,
    Service,
    check_topics,
    connection,
    create_topics,
    quiet_client_logs,
    refuse_start,
    topic_plan,
)
from services.kit.settings import CommonSettings, load_or_exit

topics_app = typer.Typer(help="Kafka topics: create or check them all.", no_args_is_help=True)


@topics_app.command("create")
def create() -> None:
    """Create the missing topics, then check them all (exit 1 on any problem)."""
    s = load_or_exit(AggregatorSettings, "topics create")
    specs = topic_plan(s, app_id=s.APP_ID)
    target = connection(s)
    try:
        with quiet_client_logs():
            made = asyncio.run(
                create_topics(
                    target,
                    specs,
                    replication_factor=s.REPLICATION_FACTOR,
                    min_insync_replicas=s.MIN_INSYNC_REPLICAS,
                )
            )
            problems = asyncio.run(
                check_topics(target, specs, replication_factor=s.REPLICATION_FACTOR)
            )
    except KafkaSetupError as exc:
        raise SystemExit(f"callpulse topics create: {exc}") from None
    for spec in specs:
        state = "created" if spec.name in made else "exists"
        plural = "" if spec.partitions == 1 else "s"
        typer.echo(
            f"{state:8} {spec.name} ({spec.partitions} partition{plural}"
            f"{', compacted' if spec.compacted else ''})"
        )
    _report(problems, len(specs))


@topics_app.command("check")
def check() -> None:
    """Check that every topic exists with the right partitions (exit 1 on any problem)."""
    s = load_or_exit(AggregatorSettings, "topics check")
    specs = topic_plan(s, app_id=s.APP_ID)
    try:
        with quiet_client_logs():
            problems = asyncio.run(
                check_topics(connection(s), specs, replication_factor=s.REPLICATION_FACTOR)
            )
    except KafkaSetupError as exc:
        raise SystemExit(f"callpulse topics check: {exc}") from None
    _report(problems, len(specs))


def _report(problems: list[str], count: int) -> None:
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"all {count} topics are as callpulse needs them")


def require_topics(service: Service) -> None:
    """At a service's start: its topics exist as specified, or exit with one line saying why."""
    s = load_or_exit(CommonSettings, service)
    if s.KAFKA_BOOTSTRAP:  # without it the service says itself what it needs
        refuse_start(service, s, topic_plan(s, service))
