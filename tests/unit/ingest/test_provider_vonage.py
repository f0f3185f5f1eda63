"""Vonage Voice event webhooks: the signed JWT with payload_hash, and the status mapping."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest

from schemas.events import CallAnswered, CallEnded, CallStarted
from tests.unit.ingest.support import VONAGE_SECRET, FakePublisher

PATH = "/v1/webhooks/vonage?rep=rep-5"
UUID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"


def status_event(status: str, **fields: Any) -> dict[str, Any]:
    """An event webhook body shaped like Vonage's reference examples."""
    return {
        "from": "447700900000",
        "to": "447700900001",
        "uuid": UUID,
        "conversation_uuid": "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        "status": status,
        "direction": "outbound",
        "timestamp": "2024-05-14T12:00:00.000Z",
        **fields,
    }


def signed(
    doc: dict[str, Any],
    *,
    secret: str = VONAGE_SECRET,
    iat: int | None = None,
    payload_hash: str | None = None,
) -> dict[str, Any]:
    body = json.dumps(doc).encode()
    claims = {
        "iat": iat if iat is not None else int(time.time()),
        "jti": "9c9f6a24-6d2d-4d2c-8c0c-4b0f1b4e5f10",
        "iss": "Vonage",
        "payload_hash": payload_hash or hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    return {
        "content": body,
        "headers": {"content-type": "application/json", "authorization": f"Bearer {token}"},
    }


async def test_completed_maps_to_call_ended_field_by_field(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    doc = status_event(
        "completed",
        end_time="2024-05-14T12:03:05.000Z",
        network="65512",
        duration="185",
        start_time="2024-05-14T12:00:00.000Z",
        rate="0.00450000",
        price="0.01387500",
        timestamp="2024-05-14T12:03:05.000Z",
    )

    response = await provider_client.post(PATH, **signed(doc))

    assert response.status_code == 202
    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.event_id == f"vonage:{UUID}:completed:2024-05-14T12:03:05.000Z"
    assert ended.call_id == UUID
    assert ended.occurred_at == datetime(2024, 5, 14, 12, 3, 5, tzinfo=UTC)
    assert ended.end_status == "completed"
    assert ended.talk_seconds == 185
    assert ended.started_at == datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
    assert ended.direction == "outbound"
    assert ended.from_ == "447700900000"
    assert ended.to == "447700900001"
    assert ended.rep_id == "rep-5"


@pytest.mark.parametrize(
    ("status", "kind", "end_status"),
    [
        ("started", CallStarted, None),
        ("ringing", CallStarted, None),
        ("answered", CallAnswered, None),
        ("busy", CallEnded, "busy"),
        ("rejected", CallEnded, "busy"),
        ("cancelled", CallEnded, "canceled"),
        ("unanswered", CallEnded, "no_answer"),
        ("timeout", CallEnded, "no_answer"),
        ("failed", CallEnded, "failed"),
    ],
)
async def test_each_status_maps_to_its_event(
    provider_client: httpx.AsyncClient,
    publisher: FakePublisher,
    status: str,
    kind: type,
    end_status: str | None,
) -> None:
    await provider_client.post(PATH, **signed(status_event(status)))

    [published] = publisher.events
    assert isinstance(published, kind)
    assert published.event_id == f"vonage:{UUID}:{status}:2024-05-14T12:00:00.000Z"
    if end_status is not None:
        assert isinstance(published, CallEnded)
        assert published.end_status == end_status


async def test_inbound_started(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    await provider_client.post(PATH, **signed(status_event("started", direction="inbound")))

    [started] = publisher.events
    assert isinstance(started, CallStarted)
    assert started.direction == "inbound"


async def test_non_call_webhooks_are_acknowledged_without_events(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    doc = {"uuid": UUID, "conversation_uuid": "CON-1", "dtmf": {"digits": "1"}}

    response = await provider_client.post(PATH, **signed(doc))

    assert response.status_code == 202
    assert response.json() == {"accepted": 0}


async def test_a_token_signed_with_another_secret_is_401(
    provider_client: httpx.AsyncClient,
) -> None:
    response = await provider_client.post(
        PATH, **signed(status_event("started"), secret="someone-elses-secret-0123456789abcd")
    )

    assert response.status_code == 401
    assert "JWT is not valid" in response.json()["detail"]


async def test_a_body_that_does_not_match_payload_hash_is_401(
    provider_client: httpx.AsyncClient,
) -> None:
    response = await provider_client.post(
        PATH, **signed(status_event("started"), payload_hash="0" * 64)
    )

    assert response.status_code == 401
    assert "payload_hash" in response.json()["detail"]


async def test_an_old_token_is_401(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(
        PATH, **signed(status_event("started"), iat=int(time.time()) - 600)
    )

    assert response.status_code == 401
    assert "older than 300 seconds" in response.json()["detail"]


async def test_missing_bearer_is_401(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(PATH, json=status_event("started"))

    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
