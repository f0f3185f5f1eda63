"""The aggregator's fail-stop signals outlive the process that stopped: the count comes back
from the data folder at the next start, and each process exports when it started."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from services.aggregator import failstop
from services.aggregator.metrics import Metrics


def _stop(data_dir: Path) -> None:
    failstop.stop(data_dir, "test: a batch raised")


def test_each_process_exports_its_start_time() -> None:
    before = time.time()
    metrics = Metrics()
    value = metrics.registry.get_sample_value("callpulse_aggregator_start_time_seconds")
    assert value is not None
    assert before <= value <= time.time()


def test_it_shares_a_registry_that_has_the_process_collector() -> None:
    """Embedded mode: one registry with process_start_time_seconds beside ours."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    Metrics(registry)
    text = generate_latest(registry).decode()
    assert "callpulse_aggregator_start_time_seconds " in text


def test_a_fail_stop_exits_70_and_is_counted_at_the_next_start(tmp_path: Path) -> None:
    for expected in (1, 2):
        child = multiprocessing.get_context("spawn").Process(target=_stop, args=(tmp_path,))
        child.start()
        child.join(30)
        assert child.exitcode == failstop.EXIT_CODE
        assert failstop.fail_stops(tmp_path) == expected
    restarted = Metrics()  # what the worker does at its start (worker.py)
    restarted.fail_stops.inc(failstop.fail_stops(tmp_path))
    assert restarted.registry.get_sample_value("callpulse_aggregator_fail_stops_total") == 2
