"""Aircall webhooks: the body token, call lifecycle events and tags as outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from schemas.events import CallAnswered, CallEnded, CallOutcome, CallStarted
from tests.unit.ingest.support import AIRCALL_TOKEN, FakePublisher

PATH = "/v1/webhooks/aircall"


def call_webhook(event: str, token: str = AIRCALL_TOKEN, **data: Any) -> dict[str, Any]:
    """A call webhook shaped like Aircall's documented payload (values made up)."""
    return {
        "resource": "call",
        "event": event,
        "timestamp": 1715680932,
        "token": token,
        "data": {
            "id": 812345678,
            "direct_link": "https://api.aircall.io/v1/calls/812345678",
            "direction": "outbound",
            "status": "done",
            "missed_call_reason": None,
            "started_at": 1715680700,
            "answered_at": 1715680712,
            "ended_at": 1715680930,
            "duration": 230,
            "voicemail": None,
            "recording": None,
            "raw_digits": "+33 6 12 34 56 78",
            "user": {
                "id": 216119,
                "direct_link": "https://api.aircall.io/v1/users/216119",
                "name": "Francois Delgado",
                "available": True,
                "availability_status": "available",
            },
            "number": {
                "id": 58108,
                "direct_link": "https://api.aircall.io/v1/numbers/58108",
                "name": "Paris sales",
                "digits": "+33 1 76 36 06 95",
                "country": "FR",
                "time_zone": "Europe/Paris",
            },
            "tags": [],
            "comments": [],
            "teams": [],
            **data,
        },
    }


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


async def test_ended_is_a_self_contained_record(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await provider_client.post(PATH, json=call_webhook("call.ended"))

    assert response.status_code == 202
    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.event_id == "aircall:812345678:call.ended:1715680932"
    assert ended.call_id == "812345678"
    assert ended.occurred_at == at(1715680930)
    assert ended.started_at == at(1715680700)
    assert ended.answered_at == at(1715680712)
    assert ended.talk_seconds == 218
    assert ended.end_status == "completed"
    assert ended.direction == "outbound"
    assert ended.from_ == "+33 1 76 36 06 95"
    assert ended.to == "+33 6 12 34 56 78"
    assert ended.rep_id == "216119"


async def test_created_and_answered(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    created = call_webhook(
        "call.created", direction="inbound", answered_at=None, ended_at=None, user=None
    )
    answered = call_webhook("call.answered", direction="inbound", ended_at=None)

    await provider_client.post(PATH, json=created)
    await provider_client.post(PATH + "?rep=fallback-rep", json=answered)

    started, picked_up = publisher.events
    assert isinstance(started, CallStarted)
    assert started.occurred_at == at(1715680700)
    assert started.direction == "inbound"
    assert started.from_ == "+33 6 12 34 56 78"
    assert started.to == "+33 1 76 36 06 95"
    assert started.rep_id is None
    assert isinstance(picked_up, CallAnswered)
    assert picked_up.occurred_at == at(1715680712)
    assert picked_up.rep_id == "216119"  # the payload's agent wins over the URL


async def test_rep_query_parameter_when_no_agent(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    await provider_client.post(PATH + "?rep=r-1", json=call_webhook("call.created", user=None))

    assert publisher.events[0].rep_id == "r-1"


@pytest.mark.parametrize(
    ("data", "end_status"),
    [
        ({"answered_at": None, "missed_call_reason": "agents_did_not_answer"}, "no_answer"),
        ({"answered_at": None, "missed_call_reason": "short_abandoned"}, "canceled"),
        ({"answered_at": None, "missed_call_reason": "abandoned_in_ivr"}, "canceled"),
        ({"answered_at": None, "voicemail": "https://cdn.aircall.io/vm.mp3"}, "voicemail"),
        ({"answered_at": None}, "no_answer"),
    ],
)
async def test_unanswered_end_statuses(
    provider_client: httpx.AsyncClient,
    publisher: FakePublisher,
    data: dict[str, Any],
    end_status: str,
) -> None:
    await provider_client.post(PATH, json=call_webhook("call.hungup", **data))

    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.end_status == end_status
    assert ended.answered_at is None
    assert ended.talk_seconds is None
    assert ended.event_id == "aircall:812345678:call.hungup:1715680932"


async def test_tagged_is_an_outcome_from_the_latest_tag(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    tags = [
        {"id": 1, "name": "Callback", "tagged_at": 1715680931},
        {"id": 2, "name": "Not Interested", "tagged_at": 1715680932},
    ]

    await provider_client.post(PATH, json=call_webhook("call.tagged", tags=tags))

    [outcome] = publisher.events
    assert isinstance(outcome, CallOutcome)
    assert outcome.outcome == "not_interested"
    assert outcome.occurred_at == at(1715680932)
    assert outcome.event_id == "aircall:812345678:call.tagged:1715680932"
    assert outcome.rep_id == "216119"


async def test_other_events_and_untagged_calls_give_no_events(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    commented = await provider_client.post(PATH, json=call_webhook("call.commented"))
    untagged = await provider_client.post(PATH, json=call_webhook("call.tagged"))

    assert commented.json() == untagged.json() == {"accepted": 0}
    assert publisher.batches == []


async def test_a_wrong_token_is_401(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(PATH, json=call_webhook("call.ended", token="nope"))

    assert response.status_code == 401
    assert "CALLPULSE_AIRCALL_TOKEN" in response.json()["detail"]


async def test_a_missing_token_is_401(provider_client: httpx.AsyncClient) -> None:
    doc = call_webhook("call.ended")
    del doc["token"]

    response = await provider_client.post(PATH, json=doc)

    assert response.status_code == 401


async def test_a_missing_call_id_is_422(provider_client: httpx.AsyncClient) -> None:
    doc = call_webhook("call.ended")
    del doc["data"]["id"]

    response = await provider_client.post(PATH, json=doc)

    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "data.id"
