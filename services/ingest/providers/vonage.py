"""Vonage Voice API event webhooks (JSON), signed with an HS256 JWT carrying `payload_hash`."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt

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
    optional_text,
    secret,
    text,
)

NAME = "vonage"
ENV = "CALLPULSE_VONAGE_SIGNATURE_SECRET"
TOLERANCE_SECONDS = 300

_STARTED = {"started", "ringing"}
_ENDED = {
    "completed": "completed",
    "busy": "busy",
    "rejected": "busy",  # the callee declined
    "cancelled": "canceled",
    "unanswered": "no_answer",
    "timeout": "no_answer",
    "failed": "failed",
}


def configured(settings: IngestSettings) -> bool:
    """Vonage needs the account's signature secret."""
    return settings.VONAGE_SIGNATURE_SECRET is not None


def verify(request: WebhookRequest, settings: IngestSettings) -> None:
    """Check the Bearer JWT (HS256, signature secret, fresh `iat`) and its payload_hash."""
    key = secret(settings.VONAGE_SIGNATURE_SECRET, NAME, ENV)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Missing `Authorization: Bearer <JWT>` header.", reason="unsigned")
    try:
        claims = jwt.decode(
            token.strip(), key, algorithms=["HS256"], options={"require": ["iat"]}, leeway=60
        )
    except jwt.InvalidTokenError as exc:
        raise unauthorized(f"The Vonage JWT is not valid: {exc}.") from exc
    iat = claims["iat"]
    if (
        not isinstance(iat, int | float)
        or request.received_at.timestamp() - iat > TOLERANCE_SECONDS
    ):
        raise unauthorized("The Vonage JWT is older than 300 seconds.", reason="stale_signature")
    expected = hashlib.sha256(request.body).hexdigest()
    claimed = claims.get("payload_hash")
    if not isinstance(claimed, str) or not hmac.compare_digest(claimed.lower(), expected):
        raise unauthorized("The JWT's payload_hash does not match the body (sha256 hex).")


def to_events(request: WebhookRequest) -> list[Event]:
    """Map call statuses to v1 events; other webhook kinds (input, record, …) map to none."""
    doc = json_object(request.body)
    status = (optional_text(doc, "status", "status") or "").lower()
    if status not in _STARTED and status != "answered" and status not in _ENDED:
        return []
    call_id = text(doc, "uuid", "uuid")
    raw_time = optional_text(doc, "timestamp", "timestamp")
    occurred_at = iso(raw_time, "timestamp") if raw_time else request.received_at
    event: dict[str, Any] = {
        "event_id": event_id(NAME, call_id, status, raw_time),
        "call_id": call_id,
        "occurred_at": occurred_at.isoformat(),
        **attribution(request.query),
    }
    if status == "answered":
        return [{**event, "type": "call.answered"}]
    if doc.get("direction") in ("inbound", "outbound"):
        event["direction"] = doc["direction"]
    # `from`/`to` are numbers as text; calls from app users carry objects, not numbers.
    event.update({key: doc[key] for key in ("from", "to") if isinstance(doc.get(key), str)})
    if status in _STARTED:
        return [{**event, "type": "call.started"}]
    ended = {**event, "type": "call.ended", "end_status": _ENDED[status]}
    duration = optional_text(doc, "duration", "duration")
    if status == "completed" and duration is not None:
        ended["talk_seconds"] = duration
    start = optional_text(doc, "start_time", "start_time")
    if start:
        ended["started_at"] = iso(start, "start_time").isoformat()
    return [ended]


PROVIDER = Provider(
    name=NAME,
    title="Vonage",
    description=(
        "Vonage Voice API event webhooks (JSON), signed with `Authorization: Bearer <JWT>` (HS256, "
        "signature secret) whose `payload_hash` is the body's SHA-256. started/ringing → "
        "call.started, answered → call.answered, "
        "completed/busy/rejected/cancelled/unanswered/timeout/failed → call.ended."
    ),
    secret_env=ENV,
    media_types=(JSON,),
    configured=configured,
    verify=verify,
    to_events=to_events,
)
