"""POST /v1/events: body forms, limits, signatures, validation and publishing outcomes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from schemas.events import CallEnded, CallOutcome, CallStarted
from services.ingest.app import create_app
from services.ingest.config import MissingSecretsError
from tests.unit.ingest.conftest import SettingsFactory
from tests.unit.ingest.support import FakePublisher, event, running, sign, unavailable

JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}


def signed(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    return {"content-type": content_type, **sign(body)}


async def test_one_event_is_published_field_by_field(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    body = json.dumps(event(campaign_id="spring", team_id="t-1")).encode()

    response = await client.post("/v1/events", content=body, headers=signed(body))

    assert response.status_code == 202
    assert response.json() == {"accepted": 1}
    [published] = publisher.events
    assert isinstance(published, CallStarted)
    assert published.event_id == "evt-1"
    assert published.call_id == "call-1"
    assert published.occurred_at == datetime(2024, 5, 6, 7, 30, tzinfo=UTC)
    assert published.rep_id == "rep-7"
    assert published.team_id == "t-1"
    assert published.campaign_id == "spring"
    assert published.direction == "outbound"
    assert published.from_ == "+4930123456"
    assert published.to == "+4930654321"


async def test_an_array_is_one_batch(client: httpx.AsyncClient, publisher: FakePublisher) -> None:
    events = [
        event(),
        event(type="call.ended", event_id="evt-2", end_status="completed", talk_seconds=312),
        event(
            type="call.outcome", event_id="evt-3", outcome="sale", amount="249.90", currency="EUR"
        ),
    ]
    body = json.dumps(events).encode()

    response = await client.post("/v1/events", content=body, headers=signed(body))

    assert response.status_code == 202
    assert response.json() == {"accepted": 3}
    assert len(publisher.batches) == 1
    started, ended, outcome = publisher.batches[0]
    assert isinstance(started, CallStarted)
    assert isinstance(ended, CallEnded)
    assert ended.end_status == "completed"
    assert ended.talk_seconds == 312
    assert isinstance(outcome, CallOutcome)
    assert outcome.amount == Decimal("249.90")
    assert outcome.currency == "EUR"


async def test_ndjson_skips_blank_lines_and_crlf(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    lines = [json.dumps(event(event_id=f"evt-{n}")) for n in range(3)]
    body = ("\r\n".join(lines[:2]) + "\n\n" + lines[2] + "\n").encode()

    response = await client.post(
        "/v1/events", content=body, headers=signed(body, "application/x-ndjson")
    )

    assert response.status_code == 202
    assert response.json() == {"accepted": 3}
    assert [e.event_id for e in publisher.events] == ["evt-0", "evt-1", "evt-2"]


async def test_an_empty_array_accepts_nothing(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await client.post("/v1/events", content=b"[]", headers=signed(b"[]"))

    assert response.status_code == 202
    assert response.json() == {"accepted": 0}
    assert publisher.batches == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"', "application/json"],
)
async def test_json_with_or_without_utf8_charset(
    client: httpx.AsyncClient, content_type: str
) -> None:
    body = json.dumps(event()).encode()

    response = await client.post("/v1/events", content=body, headers=signed(body, content_type))

    assert response.status_code == 202


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/json; charset=latin-1", ""]
)
async def test_other_content_types_are_415(
    client: httpx.AsyncClient, publisher: FakePublisher, content_type: str
) -> None:
    body = json.dumps(event()).encode()

    response = await client.post("/v1/events", content=body, headers=signed(body, content_type))

    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 415
    assert publisher.batches == []


async def test_declared_content_length_over_the_limit_is_413_before_reading(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> None:
    app = create_app(settings_factory(MAX_BODY_BYTES=100), publisher)
    read: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        read.append(b"chunk")
        yield b"{}"

    async with running(app) as client:
        response = await client.post(
            "/v1/events", content=body(), headers={**JSON, "content-length": "5000000"}
        )

    assert response.status_code == 413
    assert "100 bytes" in response.json()["detail"]
    assert read == []


async def test_streamed_body_over_the_limit_stops_reading_at_413(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> None:
    app = create_app(settings_factory(MAX_BODY_BYTES=100), publisher)
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for n in range(50):
            sent.append(n)
            yield b"x" * 40

    async with running(app) as client:
        response = await client.post("/v1/events", content=body(), headers=JSON)

    assert response.status_code == 413
    assert len(sent) < 50
    assert publisher.batches == []


@pytest.mark.parametrize("ndjson", [False, True])
async def test_more_events_than_the_limit_is_413(
    settings_factory: SettingsFactory, publisher: FakePublisher, ndjson: bool
) -> None:
    app = create_app(settings_factory(MAX_EVENTS=3), publisher)
    events = [json.dumps(event(event_id=f"e{n}")) for n in range(4)]
    body = ("\n".join(events) if ndjson else "[" + ",".join(events) + "]").encode()
    content_type = "application/x-ndjson" if ndjson else "application/json"

    async with running(app) as client:
        response = await client.post("/v1/events", content=body, headers=signed(body, content_type))

    assert response.status_code == 413
    assert "4 events" in response.json()["detail"]
    assert publisher.batches == []


async def test_missing_signature_headers_are_named(client: httpx.AsyncClient) -> None:
    body = json.dumps(event()).encode()
    headers = signed(body)
    del headers["webhook-signature"]

    response = await client.post("/v1/events", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["detail"] == "Missing Standard Webhooks header(s): webhook-signature."


async def test_a_signature_with_another_secret_is_401(client: httpx.AsyncClient) -> None:
    body = json.dumps(event()).encode()
    headers = {**JSON, **sign(body, "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")}

    response = await client.post("/v1/events", content=body, headers=headers)

    assert response.status_code == 401
    assert "No webhook-signature matches" in response.json()["detail"]


async def test_a_body_altered_after_signing_is_401(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    body = json.dumps(event()).encode()
    headers = signed(body)
    tampered = body.replace(b"rep-7", b"rep-8")

    response = await client.post("/v1/events", content=tampered, headers=headers)

    assert response.status_code == 401
    assert publisher.batches == []


async def test_a_stale_timestamp_is_401_and_says_so(client: httpx.AsyncClient) -> None:
    body = json.dumps(event()).encode()
    old = datetime.now(UTC) - timedelta(minutes=10)
    headers = {**JSON, **sign(body, at=old)}

    response = await client.post("/v1/events", content=body, headers=headers)

    assert response.status_code == 401
    assert "5-minute tolerance" in response.json()["detail"]


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        ("garbage", None),
        ("v1", None),
        ("v1,!!!", None),
        ("v1,AAAA  v1,BBBB", None),
        (None, "yesterday"),
        (None, "nan"),
        (None, "1e400"),
    ],
)
async def test_malformed_signature_headers_are_401(
    client: httpx.AsyncClient, signature: str | None, timestamp: str | None
) -> None:
    body = json.dumps(event()).encode()
    headers = signed(body)
    if signature is not None:
        headers["webhook-signature"] = signature
    if timestamp is not None:
        headers["webhook-timestamp"] = timestamp

    response = await client.post("/v1/events", content=body, headers=headers)

    assert response.status_code == 401


async def test_a_body_that_is_not_utf8_is_400(client: httpx.AsyncClient) -> None:
    headers = {**JSON, **sign(b"{}")}

    response = await client.post("/v1/events", content=b'{"a":"\xff"}', headers=headers)

    assert response.status_code == 400


async def test_without_a_secret_development_accepts_unsigned(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> None:
    app = create_app(settings_factory(WEBHOOK_SECRET=None), publisher)

    async with running(app) as client:
        response = await client.post("/v1/events", json=event())

    assert response.status_code == 202
    assert len(publisher.events) == 1


def test_production_refuses_to_start_without_the_secret(
    settings_factory: SettingsFactory, publisher: FakePublisher
) -> None:
    with pytest.raises(MissingSecretsError, match="CALLPULSE_WEBHOOK_SECRET"):
        create_app(settings_factory(WEBHOOK_SECRET=None, ENV="production"), publisher)


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    body = b'{"type": "call.started",'

    response = await client.post("/v1/events", content=body, headers=signed(body))

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


async def test_ndjson_names_the_bad_line(client: httpx.AsyncClient) -> None:
    body = b"\n".join([json.dumps(event()).encode(), b"", b"{oops}"])

    response = await client.post(
        "/v1/events", content=body, headers=signed(body, "application/x-ndjson")
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Line 3 ")


@pytest.mark.parametrize("body", [b"NaN", b"[" * 5000, b'{"a": 1e999}', b"\xef\xbb\xbf{}"])
async def test_hostile_json_is_400(
    settings_factory: SettingsFactory, publisher: FakePublisher, body: bytes
) -> None:
    app = create_app(settings_factory(WEBHOOK_SECRET=None), publisher)

    async with running(app) as client:
        response = await client.post("/v1/events", content=body, headers=JSON)

    assert response.status_code == 400


async def test_schema_violations_name_each_path_and_reject_the_batch(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    events = [
        event(),
        event(event_id="evt-2", occurred_at="2024-05-06T09:30:00"),
        event(type="call.ended", event_id="evt-3"),
        event(type="call.unknown"),
    ]
    body = json.dumps(events).encode()

    response = await client.post("/v1/events", content=body, headers=signed(body))

    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Invalid events"
    paths = [error["path"] for error in problem["errors"]]
    assert paths == ["1.occurred_at", "2.end_status", "3.type"]
    assert all(error["message"] for error in problem["errors"])
    assert publisher.batches == []


async def test_a_json_scalar_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", content=b"42", headers=signed(b"42"))

    assert response.status_code == 422


async def test_unavailable_publisher_is_503_with_retry_after(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    publisher.fail_with = unavailable(retry_after=7)
    body = json.dumps(event()).encode()

    response = await client.post("/v1/events", content=body, headers=signed(body))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_crashing_publisher_is_still_503_not_500(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    publisher.fail_with = RuntimeError("disk on fire")
    body = json.dumps(event()).encode()

    response = await client.post("/v1/events", content=body, headers=signed(body))

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "disk on fire" not in response.text


async def test_metrics_count_requests_events_and_rejections(client: httpx.AsyncClient) -> None:
    body = json.dumps([event(), event(event_id="evt-2")]).encode()
    await client.post("/v1/events", content=body, headers=signed(body))
    await client.post("/v1/events", content=b"{", headers=signed(b"{"))

    text = (await client.get("/metrics")).text

    assert (
        'callpulse_ingest_requests_total{provider="callpulse",route="/v1/events",status="202"} 1.0'
        in text
    )
    assert 'callpulse_ingest_events_total{provider="callpulse"} 2.0' in text
    assert 'callpulse_ingest_rejected_total{reason="unparseable"} 1.0' in text
    assert "callpulse_ingest_publish_seconds_count 1.0" in text
    assert "callpulse_ingest_requests_in_flight 0.0" in text


async def test_probes(settings_factory: SettingsFactory) -> None:
    publisher = FakePublisher(ready=False)
    async with running(create_app(settings_factory(), publisher)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        not_ready = await client.get("/readyz")
        publisher.is_ready = True
        ready = await client.get("/readyz")

    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"] == "application/problem+json"
    assert ready.status_code == 200


def test_without_kafka_or_a_publisher_create_app_says_what_is_missing(
    settings_factory: SettingsFactory,
) -> None:
    with pytest.raises(ValueError, match="CALLPULSE_KAFKA_BOOTSTRAP"):
        create_app(settings_factory())
