"""Telnyx Call Control webhooks: Ed25519 over `timestamp|body`, and the event mapping."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from schemas.events import CallAnswered, CallEnded, CallStarted
from tests.unit.ingest.support import TELNYX_KEY, FakePublisher

PATH = "/v1/webhooks/telnyx"
LEG = "428c31b6-7af4-4bcb-b7f5-5013ef9657c1"


def webhook(event_type: str, **payload: Any) -> dict[str, Any]:
    """A Telnyx v2 call webhook shaped like the documented examples."""
    return {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
            "occurred_at": "2024-05-14T09:25:27.521992Z",
            "payload": {
                "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
                "connection_id": "7267xxxxxxxxxxxxxx",
                "call_leg_id": LEG,
                "call_session_id": "428c31b6-abf3-3bc1-b7f4-5013ef9657c1",
                "client_state": base64.b64encode(b"rep-17").decode(),
                "from": "+35319605860",
                "to": "+13129457420",
                "direction": "outgoing",
                "state": "parked",
                **payload,
            },
        },
        "meta": {"attempt": 1, "delivered_to": "https://calls.example.com/v1/webhooks/telnyx"},
    }


def signed(
    doc: dict[str, Any],
    *,
    key: SigningKey = TELNYX_KEY,
    at: int | None = None,
    body: bytes | None = None,
) -> dict[str, Any]:
    raw = body if body is not None else json.dumps(doc).encode()
    timestamp = str(at if at is not None else int(time.time()))
    signature = key.sign(timestamp.encode() + b"|" + raw).signature
    return {
        "content": raw,
        "headers": {
            "content-type": "application/json",
            "telnyx-timestamp": timestamp,
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        },
    }


async def test_initiated_maps_to_call_started(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await provider_client.post(PATH, **signed(webhook("call.initiated")))

    assert response.status_code == 202
    [started] = publisher.events
    assert isinstance(started, CallStarted)
    assert started.event_id == f"telnyx:{LEG}:call.initiated:2024-05-14T09:25:27.521992Z"
    assert started.call_id == LEG
    assert started.occurred_at == datetime(2024, 5, 14, 9, 25, 27, 521992, tzinfo=UTC)
    assert started.rep_id == "rep-17"
    assert started.direction == "outbound"
    assert started.from_ == "+35319605860"
    assert started.to == "+13129457420"


async def test_answered_maps_to_call_answered(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    doc = webhook("call.answered", state="answered", direction="incoming")

    await provider_client.post(PATH, **signed(doc))

    [answered] = publisher.events
    assert isinstance(answered, CallAnswered)
    assert answered.call_id == LEG
    assert answered.rep_id == "rep-17"


async def test_hangup_maps_to_call_ended_with_start_time(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    doc = webhook(
        "call.hangup",
        state="hangup",
        start_time="2024-05-14T09:20:27.521992Z",
        hangup_cause="normal_clearing",
        hangup_source="caller",
        sip_hangup_cause="200",
    )
    del doc["data"]["payload"]["direction"]  # the documented hangup payload has none

    await provider_client.post(PATH, **signed(doc))

    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.end_status == "completed"
    assert ended.started_at == datetime(2024, 5, 14, 9, 20, 27, 521992, tzinfo=UTC)
    assert ended.occurred_at == datetime(2024, 5, 14, 9, 25, 27, 521992, tzinfo=UTC)
    assert ended.event_id == f"telnyx:{LEG}:call.hangup:2024-05-14T09:25:27.521992Z"


@pytest.mark.parametrize(
    ("cause", "end_status"),
    [
        ("call_rejected", "busy"),
        ("user_busy", "busy"),
        ("timeout", "no_answer"),
        ("no_answer", "no_answer"),
        ("originator_cancel", "canceled"),
        ("time_limit", "completed"),
        ("not_found", "failed"),
        ("unspecified", "failed"),
    ],
)
async def test_hangup_causes(
    provider_client: httpx.AsyncClient, publisher: FakePublisher, cause: str, end_status: str
) -> None:
    await provider_client.post(PATH, **signed(webhook("call.hangup", hangup_cause=cause)))

    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.end_status == end_status


@pytest.mark.parametrize(
    ("client_state", "query", "rep", "team"),
    [
        (base64.b64encode(b'{"rep_id": "r-9", "team_id": "t-2"}').decode(), "", "r-9", "t-2"),
        ("aGF2ZSBhIG5pY2UgZGF5ID1d", "", "have a nice day =]", None),
        (None, "?rep=r-from-url", "r-from-url", None),
        ("%%%not-base64", "?rep=r-from-url", "r-from-url", None),
    ],
)
async def test_rep_from_client_state_else_the_query(
    provider_client: httpx.AsyncClient,
    publisher: FakePublisher,
    client_state: str | None,
    query: str,
    rep: str,
    team: str | None,
) -> None:
    await provider_client.post(
        PATH + query, **signed(webhook("call.answered", client_state=client_state))
    )

    [answered] = publisher.events
    assert answered.rep_id == rep
    assert answered.team_id == team


async def test_other_event_types_are_acknowledged_without_events(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await provider_client.post(PATH, **signed(webhook("call.bridged")))

    assert response.status_code == 202
    assert response.json() == {"accepted": 0}


async def test_a_signature_by_another_key_is_401(provider_client: httpx.AsyncClient) -> None:
    request = signed(webhook("call.initiated"), key=SigningKey(bytes(32)))

    response = await provider_client.post(PATH, **request)

    assert response.status_code == 401
    assert "does not match" in response.json()["detail"]


async def test_a_stale_timestamp_is_401(provider_client: httpx.AsyncClient) -> None:
    request = signed(webhook("call.initiated"), at=int(time.time()) - 301)

    response = await provider_client.post(PATH, **request)

    assert response.status_code == 401
    assert "300-second" in response.json()["detail"]


async def test_missing_headers_are_named(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(PATH, json=webhook("call.initiated"))

    assert response.status_code == 401
    assert "telnyx-signature-ed25519, telnyx-timestamp" in response.json()["detail"]


async def test_a_signed_body_without_data_is_422(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(PATH, **signed({"meta": {}}))

    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "data"


async def test_signed_garbage_is_400(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(PATH, **signed({}, body=b"{not json"))

    assert response.status_code == 400
