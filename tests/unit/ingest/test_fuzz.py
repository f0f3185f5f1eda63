"""Property: no body, header or payload variation makes any ingest route answer 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.ingest import (
    test_provider_aircall,
    test_provider_freeswitch,
    test_provider_telnyx,
    test_provider_twilio,
    test_provider_vonage,
)
from tests.unit.ingest.support import event, sign

FUZZ = settings(
    max_examples=150,
    deadline=None,
    # One app serves every example: the fixtures hold no per-example state that matters.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

ROUTES = [
    "/v1/events",
    *(
        f"/v1/webhooks/{p}"
        for p in ("twilio", "telnyx", "vonage", "aircall", "freeswitch", "unknown")
    ),
]
CONTENT_TYPES = [
    "application/json",
    "application/x-ndjson",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-16",
    "text/plain",
    "",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def near(draw: st.DrawFn, base: dict[str, Any], nested: tuple[str, ...] = ()) -> dict[str, Any]:
    """`base` with a few fields (at the top or under `nested`) replaced, added or removed."""
    doc: dict[str, Any] = json.loads(json.dumps(base))
    target = doc
    descend = draw(st.booleans())
    if nested and descend:
        for key in nested:
            target = target[key]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        known = st.sampled_from(sorted(target)) if target else st.nothing()
        key = draw(known | st.text(max_size=12))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return doc


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    content_type=st.sampled_from(CONTENT_TYPES),
    body=st.binary(max_size=2000),
)
async def test_arbitrary_bytes_never_5xx(
    provider_client: httpx.AsyncClient, route: str, content_type: str, body: bytes
) -> None:
    response = await provider_client.post(
        route, content=body, headers={"content-type": content_type}
    )

    assert 200 <= response.status_code < 500, response.text


@FUZZ
@given(batch=st.lists(near(event()), max_size=4), ndjson=st.booleans())
async def test_near_valid_signed_events_never_5xx(
    provider_client: httpx.AsyncClient, batch: list[dict[str, Any]], ndjson: bool
) -> None:
    if ndjson:
        body = "\n".join(json.dumps(item) for item in batch).encode()
        content_type = "application/x-ndjson"
    else:
        body = json.dumps(batch).encode()
        content_type = "application/json"

    response = await provider_client.post(
        "/v1/events", content=body, headers={"content-type": content_type, **sign(body)}
    )

    assert response.status_code in (202, 400, 413, 422), response.text


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(sorted(test_provider_twilio.COMPLETED)) | st.text(max_size=10),
        st.text(max_size=80),
        max_size=6,
    ).map(lambda extra: {**test_provider_twilio.COMPLETED, **extra})
)
async def test_near_valid_twilio_never_5xx(
    provider_client: httpx.AsyncClient, fields: dict[str, str]
) -> None:
    response = await test_provider_twilio.post_signed(provider_client, fields)

    assert response.status_code in (202, 400, 422), response.text


@FUZZ
@given(
    doc=near(
        test_provider_telnyx.webhook("call.hangup", hangup_cause="normal_clearing"),
        ("data", "payload"),
    )
)
async def test_near_valid_telnyx_never_5xx(
    provider_client: httpx.AsyncClient, doc: dict[str, Any]
) -> None:
    response = await provider_client.post("/v1/webhooks/telnyx", **test_provider_telnyx.signed(doc))

    assert response.status_code in (202, 400, 422), response.text


@FUZZ
@given(doc=near(test_provider_vonage.status_event("completed", duration="12")))
async def test_near_valid_vonage_never_5xx(
    provider_client: httpx.AsyncClient, doc: dict[str, Any]
) -> None:
    response = await provider_client.post("/v1/webhooks/vonage", **test_provider_vonage.signed(doc))

    assert response.status_code in (202, 400, 422), response.text


@FUZZ
@given(
    doc=near(test_provider_aircall.call_webhook("call.ended"), ("data",)),
    event_name=st.sampled_from(["call.created", "call.answered", "call.ended", "call.tagged"]),
)
async def test_near_valid_aircall_never_5xx(
    provider_client: httpx.AsyncClient, doc: dict[str, Any], event_name: str
) -> None:
    doc.setdefault("event", event_name)
    response = await provider_client.post("/v1/webhooks/aircall", json=doc)

    assert response.status_code in (202, 400, 401, 422), response.text


@FUZZ
@given(doc=near(test_provider_freeswitch.cdr(), ("variables",)), form=st.booleans())
async def test_near_valid_freeswitch_never_5xx(
    provider_client: httpx.AsyncClient, doc: dict[str, Any], form: bool
) -> None:
    auth = test_provider_freeswitch.AUTH
    if form:
        response = await provider_client.post(
            "/v1/webhooks/freeswitch",
            content=urlencode({"cdr": json.dumps(doc)}),
            headers={"content-type": "application/x-www-form-urlencoded"},
            auth=auth,
        )
    else:
        response = await provider_client.post("/v1/webhooks/freeswitch", json=doc, auth=auth)

    assert response.status_code in (202, 400, 422), response.text
