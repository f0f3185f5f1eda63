"""Telnyx Call Control webhooks (API v2 JSON), signed with Ed25519."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import VerifyKey

from services.ingest.config import IngestSettings
from services.ingest.errors import unauthorized
from services.ingest.providers.base import (
    JSON,
    Event,
    Provider,
    WebhookRequest,
    attribution,
    event_id,
    iso,
    json_object,
    not_enabled,
    obj,
    optional_text,
    text,
)

NAME = "telnyx"
ENV = "CALLPULSE_TELNYX_PUBLIC_KEY"
TOLERANCE_SECONDS = 300

_HANGUP_STATUS = {
    "normal_clearing": "completed",
    "time_limit": "completed",  # the call was up until Telnyx's limit cut it
    "user_busy": "busy",
    "call_rejected": "busy",  # the callee declined (SIP 603), as good as busy for a dialer
    "timeout": "no_answer",
    "no_answer": "no_answer",
    "originator_cancel": "canceled",
}


_STATE_KEYS = (
    ("rep_id", ("rep_id", "rep")),
    ("team_id", ("team_id", "team")),
    ("campaign_id", ("campaign_id", "campaign")),
)


def configured(settings: IngestSettings) -> bool:
    """Telnyx needs the account's Ed25519 public key."""
    return settings.TELNYX_PUBLIC_KEY is not None


def verify(request: WebhookRequest, settings: IngestSettings) -> None:
    """Check `telnyx-signature-ed25519` over `{telnyx-timestamp}|{body}`, 300 s tolerance."""
    if settings.TELNYX_PUBLIC_KEY is None:
        raise not_enabled(NAME, ENV)
    signature = request.headers.get("telnyx-signature-ed25519")
    timestamp = request.headers.get("telnyx-timestamp")
    missing = [
        name
        for name, value in (
            ("telnyx-signature-ed25519", signature),
            ("telnyx-timestamp", timestamp),
        )
        if not value
    ]
    if missing or signature is None or timestamp is None:
        raise unauthorized(f"Missing Telnyx header(s): {', '.join(missing)}.", reason="unsigned")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) < 16):
        raise unauthorized("telnyx-timestamp is not a Unix timestamp in seconds.")
    if abs(request.received_at.timestamp() - int(timestamp)) > TOLERANCE_SECONDS:
        raise unauthorized(
            "telnyx-timestamp is outside the 300-second tolerance.", reason="stale_signature"
        )
    key = VerifyKey(base64.b64decode(settings.TELNYX_PUBLIC_KEY))
    try:
        key.verify(timestamp.encode() + b"|" + request.body, base64.b64decode(signature))
    except (BadSignatureError, NaclValueError, ValueError) as exc:
        raise unauthorized(
            "telnyx-signature-ed25519 does not match the body with the configured public key."
        ) from exc


def to_events(request: WebhookRequest) -> list[Event]:
    """Map call.initiated / call.answered / call.hangup; other event types map to none."""
    data = obj(json_object(request.body), "data", "data")
    kind = text(data, "event_type", "data.event_type")
    if kind not in ("call.initiated", "call.answered", "call.hangup"):
        return []
    payload = obj(data, "payload", "data.payload")
    call_id = text(payload, "call_leg_id", "data.payload.call_leg_id")
    raw_time = text(data, "occurred_at", "data.occurred_at")
    state = _client_state(payload.get("client_state"))
    event: dict[str, Any] = {
        "event_id": event_id(NAME, call_id, kind, raw_time),
        "call_id": call_id,
        "occurred_at": iso(raw_time, "data.occurred_at").isoformat(),
        **attribution(request.query, **state),
    }
    if kind == "call.answered":
        return [{**event, "type": "call.answered"}]
    parties = {
        key: value
        for key in ("from", "to")
        if (value := optional_text(payload, key, f"data.payload.{key}"))
    }
    direction = payload.get("direction")
    if direction in ("incoming", "outgoing"):
        event["direction"] = "inbound" if direction == "incoming" else "outbound"
    if kind == "call.initiated":
        return [{**event, "type": "call.started", **parties}]
    cause = optional_text(payload, "hangup_cause", "data.payload.hangup_cause") or ""
    ended = {**event, "type": "call.ended", "end_status": _HANGUP_STATUS.get(cause, "failed")}
    start = optional_text(payload, "start_time", "data.payload.start_time")
    if start:
        ended["started_at"] = iso(start, "data.payload.start_time").isoformat()
    return [{**ended, **parties}]


def _client_state(value: object) -> dict[str, str | None]:
    """The rep (and team, campaign) our dialer put in client_state: base64 text or JSON."""
    if not isinstance(value, str) or not value:
        return {}
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8").strip()
    except ValueError:  # not base64, not ASCII, or not UTF-8 once decoded
        return {}  # someone else's state: no attribution rather than a rejected webhook
    if decoded.startswith("{"):
        try:
            doc = orjson.loads(decoded)
        except orjson.JSONDecodeError:
            return {}
        if not isinstance(doc, dict):
            return {}
        found: dict[str, str | None] = {}
        for field, keys in _STATE_KEYS:
            values = [doc[key] for key in keys if isinstance(doc.get(key), str | int)]
            if values and not isinstance(values[0], bool) and len(str(values[0])) <= 200:
                found[field] = str(values[0])
        return found
    return {"rep_id": decoded} if 0 < len(decoded) <= 200 else {}


PROVIDER = Provider(
    name=NAME,
    title="Telnyx",
    description=(
        "Telnyx Call Control webhooks (JSON), signed with Ed25519 (`telnyx-signature-ed25519` over "
        "`{telnyx-timestamp}|{body}`, 300 s tolerance). call.initiated → call.started, "
        "call.answered → call.answered, call.hangup → call.ended; the rep comes from base64 "
        "`client_state`."
    ),
    secret_env=ENV,
    media_types=(JSON,),
    configured=configured,
    verify=verify,
    to_events=to_events,
)
