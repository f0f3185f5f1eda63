"""Twilio status callbacks: signature over PUBLIC_URL + path + query, and the status mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from schemas.events import CallAnswered, CallEnded, CallStarted
from services.ingest.app import create_app
from tests.unit.ingest.conftest import SettingsFactory
from tests.unit.ingest.support import PUBLIC_URL, TWILIO_TOKEN, FakePublisher, running

PATH = "/v1/webhooks/twilio"
QUERY = "rep=rep-42&team=berlin&campaign=spring-24"
FORM = "application/x-www-form-urlencoded"

# The fields of a Voice status callback as Twilio documents them (values made up).
COMPLETED = {
    "AccountSid": "AC3f5e8d1a2b4c6d8e0f1a2b3c4d5e6f70",
    "ApiVersion": "2010-04-01",
    "CallSid": "CA5f0c5f6a3b9d4e2f8a1b7c6d5e4f3a21",
    "CallStatus": "completed",
    "CallDuration": "187",
    "Duration": "4",
    "CallbackSource": "call-progress-events",
    "Called": "+15558675310",
    "Caller": "+15017122661",
    "Direction": "outbound-api",
    "From": "+15017122661",
    "To": "+15558675310",
    "SequenceNumber": "3",
    "Timestamp": "Tue, 14 May 2024 09:31:22 +0000",
}


async def post_signed(
    client: httpx.AsyncClient, fields: dict[str, str], *, sent_query: str | None = None
) -> httpx.Response:
    """POST `fields` signed for `?rep=…` (QUERY); `sent_query` sends another query instead."""
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        f"{PUBLIC_URL}{PATH}?{QUERY}", fields
    )
    return await client.post(
        f"{PATH}?{sent_query or QUERY}",
        content=urlencode(fields).encode(),
        headers={"content-type": FORM, "x-twilio-signature": signature},
    )


async def test_completed_maps_to_call_ended_field_by_field(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await post_signed(provider_client, COMPLETED)

    assert response.status_code == 202
    assert response.json() == {"accepted": 1}
    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.event_id == (
        "twilio:CA5f0c5f6a3b9d4e2f8a1b7c6d5e4f3a21:completed:Tue, 14 May 2024 09:31:22 +0000"
    )
    assert ended.call_id == "CA5f0c5f6a3b9d4e2f8a1b7c6d5e4f3a21"
    assert ended.occurred_at == datetime(2024, 5, 14, 9, 31, 22, tzinfo=UTC)
    assert ended.end_status == "completed"
    assert ended.talk_seconds == 187
    assert ended.direction == "outbound"
    assert ended.from_ == "+15017122661"
    assert ended.to == "+15558675310"
    assert ended.rep_id == "rep-42"
    assert ended.team_id == "berlin"
    assert ended.campaign_id == "spring-24"


@pytest.mark.parametrize(
    ("status", "kind", "end_status"),
    [
        ("initiated", CallStarted, None),
        ("ringing", CallStarted, None),
        ("in-progress", CallAnswered, None),
        ("busy", CallEnded, "busy"),
        ("no-answer", CallEnded, "no_answer"),
        ("failed", CallEnded, "failed"),
        ("canceled", CallEnded, "canceled"),
    ],
)
async def test_each_status_maps_to_its_event(
    provider_client: httpx.AsyncClient,
    publisher: FakePublisher,
    status: str,
    kind: type,
    end_status: str | None,
) -> None:
    fields = {k: v for k, v in COMPLETED.items() if k not in ("CallDuration", "Duration")}
    fields["CallStatus"] = status

    response = await post_signed(provider_client, fields)

    assert response.status_code == 202
    [published] = publisher.events
    assert isinstance(published, kind)
    assert published.event_id.startswith(f"twilio:{COMPLETED['CallSid']}:{status}:")
    if end_status is not None:
        assert isinstance(published, CallEnded)
        assert published.end_status == end_status
        assert published.talk_seconds is None


async def test_inbound_direction_and_machine_answer(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    fields = {**COMPLETED, "Direction": "inbound", "AnsweredBy": "machine_end_beep"}

    await post_signed(provider_client, fields)

    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.direction == "inbound"
    assert ended.end_status == "voicemail"


async def test_without_timestamp_the_arrival_time_is_used(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    fields = {k: v for k, v in COMPLETED.items() if k != "Timestamp"}
    before = datetime.now(UTC)

    await post_signed(provider_client, fields)

    [ended] = publisher.events
    assert ended.occurred_at >= before.replace(microsecond=0)
    assert ended.event_id == f"twilio:{COMPLETED['CallSid']}:completed:"


async def test_unknown_status_is_acknowledged_without_events(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await post_signed(provider_client, {**COMPLETED, "CallStatus": "queued-for-review"})

    assert response.status_code == 202
    assert response.json() == {"accepted": 0}
    assert publisher.batches == []


async def test_signature_covers_the_query(provider_client: httpx.AsyncClient) -> None:
    response = await post_signed(provider_client, COMPLETED, sent_query="rep=someone-else")

    assert response.status_code == 401
    assert "PUBLIC_URL" in response.json()["detail"]


async def test_missing_signature_is_401(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(
        f"{PATH}?{QUERY}", content=urlencode(COMPLETED), headers={"content-type": FORM}
    )

    assert response.status_code == 401
    assert response.json()["detail"] == "Missing X-Twilio-Signature header."


async def test_json_is_415(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(PATH, json=COMPLETED)

    assert response.status_code == 415


async def test_missing_call_sid_is_422(provider_client: httpx.AsyncClient) -> None:
    fields = {k: v for k, v in COMPLETED.items() if k != "CallSid"}

    response = await post_signed(provider_client, fields)

    assert response.status_code == 422
    assert response.json()["errors"] == [{"path": "CallSid", "message": "Field required"}]


async def test_without_public_url_the_request_url_is_signed(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> None:
    app = create_app(settings_factory(TWILIO_AUTH_TOKEN=TWILIO_TOKEN), publisher)
    url = f"https://ingest.test{PATH}?{QUERY}"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, COMPLETED)

    async with running(app) as client:
        response = await client.post(
            url,
            content=urlencode(COMPLETED),
            headers={"content-type": FORM, "x-twilio-signature": signature},
        )

    assert response.status_code == 202


async def test_not_configured_is_404(client: httpx.AsyncClient) -> None:
    response = await post_signed(client, COMPLETED)

    assert response.status_code == 404
    assert "CALLPULSE_TWILIO_AUTH_TOKEN" in response.json()["detail"]
