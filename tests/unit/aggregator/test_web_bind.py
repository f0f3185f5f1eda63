"""CALLPULSE_WEB_HOST is where the Faust worker's web server listens, not only how it is named."""

from __future__ import annotations

import pytest

from services.aggregator.app import create_app
from services.aggregator.config import AggregatorSettings


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "10.1.2.3"])  # noqa: S104 - a value
def test_the_worker_listens_on_web_host(host: str) -> None:
    app = create_app(AggregatorSettings(WEB_HOST=host))
    assert app.conf.web_bind == host
    assert app.conf.web_host == host


def test_a_laptop_worker_listens_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPULSE_WEB_HOST", raising=False)
    assert create_app(AggregatorSettings()).conf.web_bind == "127.0.0.1"
