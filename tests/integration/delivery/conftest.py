"""Fixtures of the delivery tests: the API fixtures, and a local receiver under uvicorn."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from tests.integration.api.conftest import api_factory, pg_engine, unique  # noqa: F401
from tests.integration.api.servers import serve
from tests.integration.delivery.receiver import Receiver

WHSEC = "whsec_" + base64.b64encode(b"delivery-test-secret-0123456789").decode()
ROBOT_SECRET = "SECdelivery0123456789abcdef"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The receiver, served on a free port (`receiver.url`)."""
    found = Receiver(WHSEC, ROBOT_SECRET)
    async with serve(found.app()) as url:
        found.url = url
        yield found
