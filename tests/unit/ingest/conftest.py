"""Fixtures of the ingest unit tests: explicit settings, a fake publisher, a running client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.unit.ingest.support import PROVIDER_SECRETS, SECRET, FakePublisher, running

SettingsFactory = Callable[..., IngestSettings]


@pytest.fixture(autouse=True)
def _no_callpulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("CALLPULSE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings_factory() -> SettingsFactory:
    """`settings_factory(MAX_EVENTS=3)`: signed, development settings with overrides."""

    def make(**overrides: Any) -> IngestSettings:
        values: dict[str, Any] = {"WEBHOOK_SECRET": SECRET, **overrides}
        return IngestSettings(**values)

    return make


@pytest.fixture
def publisher() -> FakePublisher:
    """The in-memory publisher the app publishes to."""
    return FakePublisher()


@pytest.fixture
async def client(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app with default (signed) settings and the fake publisher."""
    async with running(create_app(settings_factory(), publisher)) as http:
        yield http


@pytest.fixture
async def provider_client(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app with every provider adapter enabled."""
    async with running(create_app(settings_factory(**PROVIDER_SECRETS), publisher)) as http:
        yield http
