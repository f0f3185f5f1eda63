"""Fixtures: a fake callpulse floor served by a real uvicorn on a free port."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.integration.simulator.fakefloor import FakeFloor, fake_app, serving

SECRET = "whsec_" + base64.b64encode(b"simulator-integration-secret-01").decode()

ServerFactory = Callable[[FakeFloor], str]


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    """`server_factory(floor)` serves a fake floor and returns its base URL."""
    with ExitStack() as stack:

        def start(floor: FakeFloor) -> str:
            return stack.enter_context(serving(fake_app(floor)))

        yield start
