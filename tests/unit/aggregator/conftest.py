"""Fixtures for every aggregator unit test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.aggregator import faust_compat


@pytest.fixture(autouse=True)
def no_recovery_watch_left() -> Iterator[None]:
    """Building the Faust app makes the worker watch Faust's recovery log and stop the process
    on a failure it swallows (`faust_compat.on_recovery_failure`): not for the tests after."""
    logger = logging.getLogger(faust_compat.RECOVERY_LOGGER)
    filters, level = list(logger.filters), logger.level
    try:
        yield
    finally:
        logger.filters[:] = filters
        logger.setLevel(level)


@pytest.fixture(autouse=True)
def data_dir_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An app built with the rocksdb store makes its tables' folders under DATA_DIR at
    once: in the test's own folder, not in the checkout."""
    monkeypatch.setenv("CALLPULSE_DATA_DIR", str(tmp_path))
