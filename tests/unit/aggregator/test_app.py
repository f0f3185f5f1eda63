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
def unfrozen() -> Iterator[None]:
    import gc

    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_the_worker_starts_with_what_start_up_built_frozen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, default_policy: None, unfrozen: None
) -> None:
    """Full collections would walk the app, Faust and every module again (collector.py)."""
    import gc

    frozen: list[int] = []

    class Worker:
        def __init__(self, app: Any, loglevel: str) -> None:
            self.app = app

        def execute_from_commandline(self) -> None:
            frozen.append(gc.get_freeze_count())
            self.app.loop.close()

    monkeypatch.setattr(app_module.faust, "Worker", Worker)
    monkeypatch.setattr(app_module, "refuse_start", lambda *args, **kwargs: None)
    app_module.run_worker(AggregatorSettings(APP_ID="test-gc", DATA_DIR=str(tmp_path)))
    assert len(frozen) == 1
    assert frozen[0] > 10_000  # the modules and the app, not a handful
