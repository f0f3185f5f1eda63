"""IngestSettings: environment names, validation and the production secret check."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.topics import CALL_EVENTS
from services.ingest.config import IngestSettings, MissingSecretsError
from tests.unit.ingest.support import SECRET

TELNYX_KEY = "Vvd0Yh2wOz0V2Od0VuTbPhGtHEdTBVq/WQL3ICOPRSA="


def test_defaults() -> None:
    settings = IngestSettings()

    assert settings.KAFKA_BOOTSTRAP is None
    assert settings.WEBHOOK_SECRET is None
    assert settings.PUBLISH_TIMEOUT_SECONDS == 10
    assert settings.MAX_BODY_BYTES == 5 * 1024 * 1024
    assert settings.MAX_EVENTS == 10_000
    assert settings.EVENTS_TOPIC == CALL_EVENTS
    assert settings.ENV == "development"


def test_reads_callpulse_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "CALLPULSE_KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092",
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TWILIO_AUTH_TOKEN": "twilio-token",
        "CALLPULSE_TELNYX_PUBLIC_KEY": TELNYX_KEY,
        "CALLPULSE_VONAGE_SIGNATURE_SECRET": "vonage-secret",
        "CALLPULSE_AIRCALL_TOKEN": "aircall-token",
        "CALLPULSE_FREESWITCH_BASIC_AUTH": "fs:pass",
        "CALLPULSE_PUBLIC_URL": "https://calls.example.com/",
        "CALLPULSE_PUBLISH_TIMEOUT_SECONDS": "2.5",
        "CALLPULSE_MAX_BODY_BYTES": "1024",
        "CALLPULSE_MAX_EVENTS": "10",
        "CALLPULSE_EVENTS_TOPIC": "t.events",
        "CALLPULSE_ENV": "production",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = IngestSettings()

    assert settings.KAFKA_BOOTSTRAP == "kafka-1:9092,kafka-2:9092"
    assert settings.WEBHOOK_SECRET is not None
    assert settings.WEBHOOK_SECRET.get_secret_value() == SECRET
    assert settings.TELNYX_PUBLIC_KEY == TELNYX_KEY
    assert settings.FREESWITCH_BASIC_AUTH is not None
    assert settings.PUBLIC_URL == "https://calls.example.com"
    assert settings.PUBLISH_TIMEOUT_SECONDS == 2.5
    assert (settings.MAX_BODY_BYTES, settings.MAX_EVENTS) == (1024, 10)
    assert settings.EVENTS_TOPIC == "t.events"
    assert SECRET not in repr(settings)
    settings.require_production_secrets()


def test_blank_secrets_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPULSE_WEBHOOK_SECRET", "")

    assert IngestSettings().WEBHOOK_SECRET is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("WEBHOOK_SECRET", "whsec_!!!"),
        ("TELNYX_PUBLIC_KEY", "not base64 at all"),
        ("TELNYX_PUBLIC_KEY", "c2hvcnQ="),
        ("FREESWITCH_BASIC_AUTH", "no-colon"),
        ("PUBLIC_URL", "calls.example.com"),
        ("PUBLISH_TIMEOUT_SECONDS", 0),
        ("TIMEZONE", "Mars/Olympus"),
    ],
)
def test_rejects_malformed_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        IngestSettings(**{field: value})


def test_production_names_every_missing_secret() -> None:
    settings = IngestSettings(ENV="production", TWILIO_AUTH_TOKEN="t")

    with pytest.raises(MissingSecretsError) as raised:
        settings.require_production_secrets()

    assert "CALLPULSE_WEBHOOK_SECRET" in str(raised.value)
    assert "CALLPULSE_PUBLIC_URL" in str(raised.value)


def test_development_needs_no_secret() -> None:
    IngestSettings(ENV="development").require_production_secrets()
