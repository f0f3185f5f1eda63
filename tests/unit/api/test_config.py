"""API settings from the environment."""

from __future__ import annotations

import pytest

from schemas import topics
from services.api.config import DEFAULT_DATABASE_URL, ApiSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP", "DATABASE_URL", "BOOTSTRAP_ADMIN_KEY", "TIMEZONE"):
        monkeypatch.delenv(f"CALLPULSE_{name}", raising=False)
    settings = ApiSettings()
    assert settings.KAFKA_BOOTSTRAP is None
    assert settings.DATABASE_URL == DEFAULT_DATABASE_URL
    assert settings.BOOTSTRAP_ADMIN_KEY is None
    assert (settings.KPIS_TOPIC, settings.CALLS_TOPIC) == (topics.KPIS, topics.CALLS)
    assert settings.REP_METRICS_CAP == 500


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/x", "postgresql+asyncpg://u:p@db:5432/x"),
        ("postgres://u:p@db/x", "postgresql+asyncpg://u:p@db/x"),
        ("postgresql+asyncpg://u:p@db/x", "postgresql+asyncpg://u:p@db/x"),
        ("sqlite+aiosqlite:///tmp/a.db", "sqlite+aiosqlite:///tmp/a.db"),
    ],
)
def test_database_url_gets_an_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("CALLPULSE_DATABASE_URL", given)
    url = ApiSettings().DATABASE_URL
    assert url == expected


def test_blank_values_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPULSE_KAFKA_BOOTSTRAP", "")
    monkeypatch.setenv("CALLPULSE_BOOTSTRAP_ADMIN_KEY", " ")
    settings = ApiSettings()
    assert settings.KAFKA_BOOTSTRAP is None
    assert settings.BOOTSTRAP_ADMIN_KEY is None


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(
        ValueError, match="CALLPULSE_TIMEZONE='Mars/Olympus' is not an IANA time zone"
    ):
        ApiSettings(TIMEZONE="Mars/Olympus")


def test_reads_callpulse_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The names in the README's configuration table, shared ones included, are a contract."""
    env = {
        "KAFKA_BOOTSTRAP": "kafka:9092",
        "DATABASE_URL": "postgresql://u:p@db/x",
        "BOOTSTRAP_ADMIN_KEY": "admin-key",
        "TIMEZONE": "Asia/Shanghai",
        "PARTITIONS": "8",
        "KPIS_TOPIC": "t.kpis",
        "CALLS_TOPIC": "t.calls",
        "ROSTER_TOPIC": "t.roster",
        "ALERTS_TOPIC": "t.alerts",
        "REP_METRICS_CAP": "20",
        "CONVERSATION_MIN_SECONDS": "90",
        "PUBLIC_URL": "https://callpulse.example",
        "ALERTMANAGER_URL": "http://alertmanager:9093",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"CALLPULSE_{name}", value)

    settings = ApiSettings()

    assert settings.KAFKA_BOOTSTRAP == "kafka:9092"
    assert settings.DATABASE_URL == "postgresql+asyncpg://u:p@db/x"
    assert settings.BOOTSTRAP_ADMIN_KEY is not None
    assert settings.TIMEZONE == "Asia/Shanghai"
    assert settings.PARTITIONS == 8
    assert (
        settings.KPIS_TOPIC,
        settings.CALLS_TOPIC,
        settings.ROSTER_TOPIC,
        settings.ALERTS_TOPIC,
    ) == ("t.kpis", "t.calls", "t.roster", "t.alerts")
    assert settings.REP_METRICS_CAP == 20
    assert settings.CONVERSATION_MIN_SECONDS == 90
    assert settings.PUBLIC_URL == "https://callpulse.example"
    assert settings.ALERTMANAGER_URL == "http://alertmanager:9093"


WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_alert_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPULSE_ALERTMANAGER_URL", "http://alertmanager:9093")
    monkeypatch.setenv("CALLPULSE_ALERT_WEBHOOK_URL", "https://hooks.example/callpulse")
    monkeypatch.setenv("CALLPULSE_ALERT_WEBHOOK_SECRET", WHSEC)
    monkeypatch.setenv("CALLPULSE_PUBLIC_URL", "")
    settings = ApiSettings()
    assert settings.ALERTMANAGER_URL == "http://alertmanager:9093"
    assert settings.ALERT_WEBHOOK_SECRET is not None
    assert settings.ALERT_WEBHOOK_SECRET.get_secret_value() == WHSEC
    assert settings.PUBLIC_URL is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALERT_WEBHOOK_URL": "https://hooks.example"}, "CALLPULSE_ALERT_WEBHOOK_SECRET"),
        ({"ALERT_WEBHOOK_URL": "https://h.example", "ALERT_WEBHOOK_SECRET": "x!"}, "whsec_"),
        ({"ALERTMANAGER_URL": "alertmanager:9093"}, "http"),
    ],
)
def test_alert_settings_refuse_to_start_when_incomplete(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(f"CALLPULSE_{name}", value)
    with pytest.raises(ValueError, match=message):
        ApiSettings()
