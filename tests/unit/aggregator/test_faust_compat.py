"""The Faust compatibility module refuses versions and internals it was not checked against."""

from __future__ import annotations

import importlib.metadata

import pytest
from faust.transport.consumer import Consumer

from services.aggregator import faust_compat


def test_the_pinned_versions_pass() -> None:
    assert faust_compat.problems() == []
    faust_compat.check()


def test_another_faust_version_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "0.16.0" if name == "faust-streaming" else real(name),
    )
    with pytest.raises(faust_compat.IncompatibleFaust, match=r"faust-streaming 0\.16\.0"):
        faust_compat.check()


def test_a_patched_method_that_disappeared_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(Consumer, "_new_offset")
    with pytest.raises(faust_compat.IncompatibleFaust, match="_new_offset is gone"):
        faust_compat.check()


def test_the_worker_refuses_to_start_with_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.aggregator import app
    from services.aggregator.config import AggregatorSettings

    async def no_topics(*args: object, **kwargs: object) -> None:
        return None

    monkeypatch.setattr("services.kit.kafka.ensure_topics", no_topics)
    monkeypatch.setattr(faust_compat, "SUPPORTED", {"aiokafka": ("9.9.9",)})
    with pytest.raises(SystemExit) as stopped:
        app.run_worker(AggregatorSettings())
    assert str(stopped.value).startswith("callpulse aggregator: ")
    assert "aiokafka 0.14.0 is installed" in str(stopped.value)
