"""CommonSettings: the shared names every service reads, and the time zone check."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from schemas import topics
from services.aggregator.config import AggregatorSettings
from services.api.config import ApiSettings
from services.ingest.config import IngestSettings
from services.kit.settings import CommonSettings

SERVICES = [ApiSettings, IngestSettings, AggregatorSettings]


@pytest.fixture(autouse=True)
def _no_callpulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("CALLPULSE_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("settings_class", SERVICES)
def test_every_service_reads_the_shared_names(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[CommonSettings]
) -> None:
    env = {
        "KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092",
        "EVENTS_TOPIC": "t.events",
        "FACTS_TOPIC": "t.facts",
        "KPIS_TOPIC": "t.kpis",
        "CALLS_TOPIC": "t.calls",
        "ALERTS_TOPIC": "t.alerts",
        "ROSTER_TOPIC": "t.roster",
        "PARTITIONS": "12",
        "TIMEZONE": "Europe/Paris",
        "CONVERSATION_MIN_SECONDS": "120",
        "MAX_CALL_SECONDS": "7200",
        "CALL_RETENTION_SECONDS": "3600",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"CALLPULSE_{name}", value)

    settings = settings_class()

    assert settings.KAFKA_BOOTSTRAP == "kafka-1:9092,kafka-2:9092"
    assert (
        settings.EVENTS_TOPIC,
        settings.FACTS_TOPIC,
        settings.KPIS_TOPIC,
        settings.CALLS_TOPIC,
        settings.ALERTS_TOPIC,
        settings.ROSTER_TOPIC,
    ) == ("t.events", "t.facts", "t.kpis", "t.calls", "t.alerts", "t.roster")
    assert settings.PARTITIONS == 12
    assert settings.TIMEZONE == "Europe/Paris"
    assert settings.CONVERSATION_MIN_SECONDS == 120
    assert settings.MAX_CALL_SECONDS == 7200
    assert settings.CALL_RETENTION_SECONDS == 3600


@pytest.mark.parametrize(
    ("settings_class", "bootstrap"),
    [
        (ApiSettings, None),  # no Kafka: embedded
        (IngestSettings, None),  # refuses to start without Kafka (embedded mode wires it itself)
        (AggregatorSettings, "127.0.0.1:19092"),  # always Kafka: the local broker by default
    ],
)
def test_shared_defaults(settings_class: type[CommonSettings], bootstrap: str | None) -> None:
    settings = settings_class()

    assert bootstrap == settings.KAFKA_BOOTSTRAP
    assert (
        settings.EVENTS_TOPIC,
        settings.FACTS_TOPIC,
        settings.KPIS_TOPIC,
        settings.CALLS_TOPIC,
        settings.ALERTS_TOPIC,
        settings.ROSTER_TOPIC,
    ) == (
        topics.CALL_EVENTS,
        topics.REP_FACTS,
        topics.KPIS,
        topics.CALLS,
        topics.ALERTS,
        topics.ROSTER,
    )
    assert settings.PARTITIONS == 4
    assert settings.TIMEZONE == "UTC"
    assert settings.CONVERSATION_MIN_SECONDS == 300
    assert settings.MAX_CALL_SECONDS == 4 * 3600
    assert settings.CALL_RETENTION_SECONDS == 6 * 3600


@pytest.mark.parametrize("settings_class", [CommonSettings, *SERVICES])
@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "utc", "", "../etc", "/etc/localtime"])
def test_an_unknown_time_zone_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[CommonSettings], zone: str
) -> None:
    monkeypatch.setenv("CALLPULSE_TIMEZONE", zone)

    with pytest.raises(ValidationError) as raised:
        settings_class()

    assert f"CALLPULSE_TIMEZONE={zone!r} is not an IANA time zone name" in str(raised.value)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Asia/Shanghai", "America/New_York"])
def test_iana_time_zones_are_accepted(zone: str) -> None:
    assert zone == CommonSettings(TIMEZONE=zone).TIMEZONE


@pytest.mark.parametrize(
    "field",
    ["PARTITIONS", "CONVERSATION_MIN_SECONDS", "MAX_CALL_SECONDS", "CALL_RETENTION_SECONDS"],
)
def test_counts_and_durations_are_positive(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        CommonSettings(**{field: 0})
