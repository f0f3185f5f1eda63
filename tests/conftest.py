"""Shared fixtures: the real Kafka broker and PostgreSQL that `make test` starts.

Without them a test that needs them skips locally, and fails under CI=true (nothing may skip).
"""

from __future__ import annotations

import faulthandler
import os
import socket
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest

KAFKA = os.environ.get("CALLPULSE_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
DATABASE_URL = os.environ.get(
    "CALLPULSE_TEST_DATABASE_URL",
    "postgresql+asyncpg://callpulse:callpulse@127.0.0.1:15432/callpulse_test",
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Services check their topics at start and refuse missing ones; tests run them on unique
# topics per test, so they create them first as `callpulse topics create` would (subprocesses
# inherit this). Tests of the refusal set CALLPULSE_CREATE_TOPICS=false themselves.
os.environ.setdefault("CALLPULSE_CREATE_TOPICS", "true")


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def _require(what: str, host_port: str) -> None:
    if _reachable(host_port):
        return
    message = f"{what} is not reachable at {host_port}; run `make infra`"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under CI, a skip is a failure: turn skip markers into errors up front."""
    if not IN_CI:
        return
    for item in items:
        if item.get_closest_marker("skip") or item.get_closest_marker("skipif"):
            item.add_marker(pytest.mark.xfail(reason="skips are not allowed in CI", strict=True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI, report a skip from inside a test as a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true: {report.longrepr}"


HUNG_GRACE_SECONDS = 120
"""How long past its own timeout a test may still run before the whole run is stopped."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """A backstop for pytest-timeout. Its SIGALRM fires once: in an asyncio test the failure it
    raises can land in a background task and be swallowed, or the teardown can hang on the same
    thing after it, and the run then waits forever (a CI run was killed after 90 minutes with
    no trace). Past the test's timeout plus a grace, dump every thread's stack and exit."""
    marker = item.get_closest_marker("timeout")
    limit = marker.args[0] if marker and marker.args else item.config.getini("timeout")
    watchdog = threading.Timer(float(limit) + HUNG_GRACE_SECONDS, _abort, args=(item,))
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()


def _abort(item: pytest.Item) -> None:
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:  # else the stacks would go to the test's captured output, lost
        capture.suspend_global_capture(in_=True)
    sys.stderr.write(f"\n\n{item.nodeid} hung past its timeout; stacks of every thread:\n")
    faulthandler.dump_traceback(all_threads=True)
    sys.stderr.flush()
    os._exit(70)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The local broker's bootstrap address (skips locally, fails in CI, when it is down)."""
    _require("Kafka", KAFKA)
    return KAFKA


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy async URL of the test database."""
    host_port = DATABASE_URL.split("@", 1)[1].split("/", 1)[0]
    _require("PostgreSQL", host_port)
    return DATABASE_URL


@pytest.fixture
def topic_factory() -> Iterator[object]:
    """Unique topic names per test: `topic_factory("call-events")`."""
    suffix = uuid.uuid4().hex[:8]

    def make(name: str) -> str:
        return f"test.{name}.{suffix}"

    return make
