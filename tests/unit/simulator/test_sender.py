"""The sender: wire format, signatures, what it retries and what it gives up on."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook

from schemas.events import CallEvent
from services.simulator.faults import Scheduled
from services.simulator.floor import FloorConfig, generate
from services.simulator.sender import (
    Delivery,
    RetryPolicy,
    Sender,
    batched,
    encode,
    send_all,
    send_live,
)

SECRET = "whsec_" + base64.b64encode(b"simulator-unit-secret-0123456789").decode()
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EVENTS = generate(FloorConfig(reps=3, teams=1, shift=None), END - timedelta(minutes=20), END)
FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, timeout=2)


async def _no_sleep(_: float) -> None:
    return None


def _sender(handler: httpx.MockTransport, secret: str | None = SECRET) -> Sender:
    client = httpx.AsyncClient(transport=handler, base_url="http://ingest")
    return Sender(client, secret, FAST, rng=random.Random(0), sleep=_no_sleep)


def test_one_event_is_an_object_and_several_an_array() -> None:
    assert json.loads(encode(EVENTS[:1]))["event_id"] == EVENTS[0].event_id
    assert [e["event_id"] for e in json.loads(encode(EVENTS[:3]))] == [
        e.event_id for e in EVENTS[:3]
    ]


def test_batched_keeps_order_and_size() -> None:
    batches = list(batched(EVENTS, 7))
    assert [e for b in batches for e in b] == EVENTS
    assert all(len(b) == 7 for b in batches[:-1])


async def test_requests_are_signed_and_verifiable() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        Webhook(SECRET).verify(request.content, dict(request.headers))
        return httpx.Response(202, json={"accepted": len(json.loads(request.content))})

    delivery = await _sender(httpx.MockTransport(handler)).post(EVENTS[:5])
    assert delivery.accepted
    assert delivery.attempts == 1
    assert seen[0].url.path == "/v1/events"


async def test_unsigned_without_a_secret() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "webhook-signature" not in request.headers
        return httpx.Response(202, json={"accepted": 1})

    assert (await _sender(httpx.MockTransport(handler), secret=None).post(EVENTS[:1])).accepted


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, headers={"retry-after": "0"}),
        httpx.Response(500),
        httpx.Response(429),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
    ],
)
async def test_transient_failures_are_retried_with_the_same_ids(
    failure: httpx.Response | Exception,
) -> None:
    bodies: list[bytes] = []
    msg_ids: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        msg_ids.append(request.headers["webhook-id"])
        if len(bodies) < 3:
            if isinstance(failure, Exception):
                raise failure
            return failure
        return httpx.Response(202, json={"accepted": 4})

    delivery = await _sender(httpx.MockTransport(handler)).post(EVENTS[:4])
    assert delivery.accepted
    assert delivery.attempts == 3
    assert len(set(bodies)) == 1
    assert len(set(msg_ids)) == 1


async def test_a_client_error_is_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(422, json={"title": "schema violation"})

    delivery = await _sender(httpx.MockTransport(handler)).post(EVENTS[:2])
    assert not delivery.accepted
    assert calls == 1
    assert "422" in delivery.detail


async def test_it_gives_up_after_the_bound_and_reports() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    sender = _sender(httpx.MockTransport(handler))
    report = await send_all(sender, batched(EVENTS[:10], 5), concurrency=2)
    assert report.batches == 2
    assert report.retries == 2 * (FAST.attempts - 1)
    assert not report.accepted_ids
    assert [(first, n) for first, n, _ in report.failures] == [
        (EVENTS[0].event_id, 5),
        (EVENTS[5].event_id, 5),
    ]
    assert all("gave up" in detail for _, _, detail in report.failures)


async def test_send_all_delivers_every_batch_once() -> None:
    received: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        items = body if isinstance(body, list) else [body]
        received.extend(item["event_id"] for item in items)
        return httpx.Response(202, json={"accepted": len(items)})

    progressed: list[int] = []
    sender = _sender(httpx.MockTransport(handler))
    report = await send_all(sender, batched(EVENTS, 9), concurrency=4, progress=progressed.append)
    assert sorted(received) == sorted(e.event_id for e in EVENTS)
    assert report.accepted_ids == {e.event_id for e in EVENTS}
    assert sum(progressed) == len(EVENTS)
    assert not report.failures


async def test_send_live_sends_what_is_due_and_stops_on_request() -> None:
    received: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        received.append([e["event_id"] for e in (body if isinstance(body, list) else [body])])
        return httpx.Response(202, json={"accepted": 1})

    past = [Scheduled(e.occurred_at, e) for e in EVENTS[:5]]
    future = Scheduled(END + timedelta(hours=1), EVENTS[5])
    stop = asyncio.Event()

    def on_sent(events: Sequence[CallEvent], _: Delivery) -> None:
        if sum(map(len, received)) == 5:
            stop.set()  # the future event is due in an hour: stop while waiting for it

    sender = _sender(httpx.MockTransport(handler))
    report = await send_live(
        sender, [*past, future], stop, batch=3, clock=lambda: END, on_sent=on_sent
    )
    assert received == [[e.event_id for e in EVENTS[:3]], [e.event_id for e in EVENTS[3:5]]]
    assert report.accepted_ids == {e.event_id for e in EVENTS[:5]}
