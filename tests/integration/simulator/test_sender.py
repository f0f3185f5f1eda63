"""The sender against a real HTTP server: a 503 is retried with the same ids, then accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from services.simulator.floor import FloorConfig, generate
from services.simulator.sender import RetryPolicy, Sender, batched, send_all
from tests.integration.simulator.conftest import SECRET, ServerFactory
from tests.integration.simulator.fakefloor import FakeFloor, free_port

END = datetime.now(UTC)
EVENTS = generate(FloorConfig(reps=4, teams=2, shift=None), END - timedelta(minutes=30), END)
QUICK = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, timeout=5)


async def test_a_503_is_retried_with_the_same_event_ids(server_factory: ServerFactory) -> None:
    floor = FakeFloor(secret=SECRET, fail_first=True)
    url = server_factory(floor)
    async with httpx.AsyncClient(base_url=url) as client:
        delivery = await Sender(client, SECRET, QUICK).post(EVENTS[:3])
    assert delivery.accepted
    assert delivery.attempts == 2
    (first_id, first_events, first_status), (again_id, again_events, again_status) = floor.attempts
    assert (first_status, again_status) == (503, 202)
    assert first_id == again_id
    assert first_events == again_events == [e.event_id for e in EVENTS[:3]]
    assert floor.event_ids() == first_events


async def test_every_batch_arrives_once_despite_first_attempt_failures(
    server_factory: ServerFactory,
) -> None:
    floor = FakeFloor(secret=SECRET, fail_first=True)
    url = server_factory(floor)
    async with httpx.AsyncClient(base_url=url) as client:
        report = await send_all(Sender(client, SECRET, QUICK), batched(EVENTS, 25), concurrency=4)
    assert not report.failures
    assert report.retries == report.batches
    assert sorted(floor.event_ids()) == sorted(e.event_id for e in EVENTS)


async def test_an_unreachable_ingest_is_given_up_and_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with httpx.AsyncClient(base_url=url) as client:
        report = await send_all(Sender(client, SECRET, QUICK), batched(EVENTS[:4], 2))
    assert report.batches == 2
    assert report.retries == 2 * (QUICK.attempts - 1)
    assert not report.accepted_ids
    assert all("ConnectError" in detail for _, _, detail in report.failures)
