"""`run_worker` runs the Faust worker on uvloop: the loop the app is built with is the one the
worker runs, so the policy must be set before the app is built (until 2026-12-03 it was set
after, and the worker ran on asyncio's own loop, ~30 % slower per message)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from services.aggregator import app as app_module
from services.aggregator.config import AggregatorSettings


@pytest.fixture
def default_policy() -> Iterator[None]:
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(None)
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(before)


def test_the_worker_runs_on_uvloop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, default_policy: None
) -> None:
    ran: list[Any] = []

    class Worker:  # Faust's worker, up to the point where it would connect
        def __init__(self, app: Any, loglevel: str) -> None:
            self.app = app

        def execute_from_commandline(self) -> None:
            ran.append(self.app.loop)

    monkeypatch.setattr(app_module.faust, "Worker", Worker)
    monkeypatch.setattr(app_module, "refuse_start", lambda *args, **kwargs: None)
    settings = AggregatorSettings(APP_ID="test-loop", DATA_DIR=str(tmp_path))
    app_module.run_worker(settings)
    assert len(ran) == 1
    assert isinstance(ran[0], uvloop.Loop)
    ran[0].close()


@pytest.fixture
def collector_state() -> Iterator[None]:
    import gc

    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_the_worker_runs_with_the_collector_tuned_and_start_up_frozen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, default_policy: None, collector_state: None
) -> None:
    """The default thresholds cost a sixth of the core's time and full collections of up to
    ~100 ms (services/kit/collector.py)."""
    import gc

    from services.kit.collector import YOUNG_THRESHOLD

    seen: list[tuple[int, bool]] = []

    class Worker:
        def __init__(self, app: Any, loglevel: str) -> None:
            self.app = app

        def execute_from_commandline(self) -> None:
            seen.append(
                (gc.get_threshold()[0], gc.is_tracked(self.app) and gc.get_freeze_count() > 0)
            )
            self.app.loop.close()

    gc.unfreeze()
    monkeypatch.setattr(app_module.faust, "Worker", Worker)
    monkeypatch.setattr(app_module, "refuse_start", lambda *args, **kwargs: None)
    app_module.run_worker(AggregatorSettings(APP_ID="test-gc", DATA_DIR=str(tmp_path)))
    assert seen == [(YOUNG_THRESHOLD, True)]
