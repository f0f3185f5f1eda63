"""Logs: the unsigned-mode warning once, and never a secret or a full phone number."""

from __future__ import annotations

import json

from structlog.testing import capture_logs

from services.ingest.app import create_app
from tests.unit.ingest.conftest import SettingsFactory
from tests.unit.ingest.support import (
    PROVIDER_SECRETS,
    SECRET,
    FakePublisher,
    event,
    running,
)
from tests.unit.ingest.test_provider_freeswitch import AUTH, cdr


async def test_unsigned_mode_warns_once(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> None:
    with capture_logs() as logs:
        app = create_app(settings_factory(WEBHOOK_SECRET=None), publisher)
        async with running(app) as client:
            await client.post("/v1/events", json=event())
            await client.post("/v1/events", json=event(event_id="evt-2"))

    warnings = [entry for entry in logs if entry["event"] == "webhook_signatures_disabled"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"


async def test_logs_hold_no_secret_and_no_full_phone_number(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> None:
    app = create_app(settings_factory(**PROVIDER_SECRETS), publisher)

    with capture_logs() as logs:
        async with running(app) as client:
            await client.post("/v1/webhooks/freeswitch", json=cdr(), auth=AUTH)
            await client.post("/v1/webhooks/freeswitch", json=cdr(), auth=("x", "wrong"))
            await client.post("/v1/events", json=event())

    text = json.dumps(logs, default=str)
    assert "webhook_mapped" in text
    assert "***5000" in text
    for secret in (SECRET, *(str(value) for value in PROVIDER_SECRETS.values())):
        if secret.startswith("https://"):
            continue
        assert secret not in text
    assert "4930555000" not in text
    assert "4930555123" not in text
