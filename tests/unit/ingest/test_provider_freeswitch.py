"""FreeSWITCH mod_json_cdr: basic auth, raw JSON and `cdr=` form bodies, one call.ended per CDR."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from schemas.events import CallEnded
from tests.unit.ingest.support import FakePublisher

PATH = "/v1/webhooks/freeswitch"
AUTH = ("freeswitch", "cdr-pass")
UUID = "6f644233-fcae-46bb-ad45-74838a9c51ab"


def cdr(**variables: str) -> dict[str, Any]:
    """A CDR as mod_json_cdr posts it with `encode-values=true` (its default)."""
    return {
        "core-uuid": "2df5304f-b9b6-456b-8d6c-2dd01afd7771",
        "switchname": "fs01",
        "channel_data": {"state": "CS_REPORTING", "direction": "outbound", "state_number": "11"},
        "variables": {
            "direction": "outbound",
            "uuid": UUID,
            "session_id": "17",
            "sip_from_user": "1000",
            "sip_from_uri": "1000%40192.168.0.100",
            "channel_name": "sofia%2Fexternal%2F%2B4930555123%40carrier.example",
            "caller_id_number": "%2B4930555000",
            "destination_number": "%2B4930555123",
            "start_stamp": "2024-05-14%2009%3A25%3A00",
            "start_epoch": "1715678700",
            "answer_epoch": "1715678712",
            "end_epoch": "1715678900",
            "duration": "200",
            "billsec": "188",
            "hangup_cause": "NORMAL_CLEARING",
            "callpulse_rep_id": "rep%2D3",
            "callpulse_team_id": "berlin",
            **variables,
        },
        "callflow": [{"dialplan": "XML", "profile_index": "1"}],
    }


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


async def test_answered_cdr_maps_field_by_field(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await provider_client.post(PATH, json=cdr(), auth=AUTH)

    assert response.status_code == 202
    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.event_id == f"freeswitch:{UUID}:call.ended:1715678900"
    assert ended.call_id == UUID
    assert ended.occurred_at == at(1715678900)
    assert ended.started_at == at(1715678700)
    assert ended.answered_at == at(1715678712)
    assert ended.talk_seconds == 188
    assert ended.end_status == "completed"
    assert ended.direction == "outbound"
    assert ended.from_ == "+4930555000"
    assert ended.to == "+4930555123"
    assert ended.rep_id == "rep-3"
    assert ended.team_id == "berlin"


async def test_form_encoded_cdr_variant(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    body = urlencode({"cdr": json.dumps(cdr())})

    response = await provider_client.post(
        PATH,
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=AUTH,
    )

    assert response.status_code == 202
    [ended] = publisher.events
    assert ended.call_id == UUID
    assert isinstance(ended, CallEnded)
    assert ended.from_ == "+4930555000"


async def test_base64_cdr_variant(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    body = urlencode({"cdr": base64.b64encode(json.dumps(cdr()).encode()).decode()})

    response = await provider_client.post(
        PATH,
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=AUTH,
    )

    assert response.status_code == 202
    assert publisher.events[0].call_id == UUID


@pytest.mark.parametrize(
    ("cause", "end_status"),
    [
        ("USER_BUSY", "busy"),
        ("CALL_REJECTED", "busy"),
        ("NO_ANSWER", "no_answer"),
        ("NO_USER_RESPONSE", "no_answer"),
        ("ORIGINATOR_CANCEL", "canceled"),
        ("UNALLOCATED_NUMBER", "failed"),
        ("NORMAL_CLEARING", "failed"),
    ],
)
async def test_unanswered_hangup_causes(
    provider_client: httpx.AsyncClient, publisher: FakePublisher, cause: str, end_status: str
) -> None:
    doc = cdr(answer_epoch="0", billsec="0", hangup_cause=cause)

    await provider_client.post(PATH, json=doc, auth=AUTH)

    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.end_status == end_status
    assert ended.answered_at is None
    assert ended.talk_seconds == 0


async def test_callpulse_direction_overrides_the_leg_direction(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    await provider_client.post(
        PATH + "?rep=ignored",
        json=cdr(direction="inbound", callpulse_direction="outbound"),
        auth=AUTH,
    )

    [ended] = publisher.events
    assert isinstance(ended, CallEnded)
    assert ended.direction == "outbound"
    assert ended.rep_id == "rep-3"


async def test_rep_from_the_query_when_the_dialplan_sets_none(
    provider_client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    doc = cdr()
    del doc["variables"]["callpulse_rep_id"]

    await provider_client.post(PATH + "?rep=rep-from-url", json=doc, auth=AUTH)

    assert publisher.events[0].rep_id == "rep-from-url"


async def test_missing_credentials_are_401_with_a_challenge(
    provider_client: httpx.AsyncClient,
) -> None:
    response = await provider_client.post(PATH, json=cdr())

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_wrong_credentials_are_401(provider_client: httpx.AsyncClient) -> None:
    response = await provider_client.post(PATH, json=cdr(), auth=("freeswitch", "guess"))

    assert response.status_code == 401
    assert response.json()["detail"] == "Wrong basic credentials."


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"channel_data": {}}, "variables"),
        ({"variables": {"end_epoch": "1715678900"}}, "variables.uuid"),
        ({"variables": {"uuid": UUID}}, "variables.end_epoch"),
        ({"variables": {"uuid": UUID, "end_epoch": "yesterday"}}, "variables.end_epoch"),
    ],
)
async def test_incomplete_cdrs_are_422(
    provider_client: httpx.AsyncClient, doc: dict[str, Any], path: str
) -> None:
    response = await provider_client.post(PATH, json=doc, auth=AUTH)

    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == path
