"""Twilio Voice status callbacks (form-encoded), signed with `X-Twilio-Signature`."""

from __future__ import annotations

from typing import Any

from twilio.request_validator import RequestValidator

from services.ingest.config import IngestSettings
from services.ingest.errors import unauthorized
from services.ingest.providers.base import (
    FORM,
    Event,
    Provider,
    WebhookRequest,
    attribution,
    event_id,
    form_fields,
    form_multi,
    optional_text,
    rfc2822,
    secret,
    text,
)

NAME = "twilio"
ENV = "CALLPULSE_TWILIO_AUTH_TOKEN"

_STARTED = {"queued", "initiated", "ringing"}
_ENDED = {
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "canceled",
}


class _Params(dict[str, list[str]]):
    """Form fields with every value, in the `getlist` shape RequestValidator understands."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def configured(settings: IngestSettings) -> bool:
    """Twilio needs the account's auth token."""
    return settings.TWILIO_AUTH_TOKEN is not None


def verify(request: WebhookRequest, settings: IngestSettings) -> None:
    """Check X-Twilio-Signature over the public URL (with query) and the form fields."""
    token = secret(settings.TWILIO_AUTH_TOKEN, NAME, ENV)
    signature = request.headers.get("x-twilio-signature")
    if not signature:
        raise unauthorized("Missing X-Twilio-Signature header.", reason="unsigned")
    validator = RequestValidator(token)
    if not validator.validate(request.url, _Params(form_multi(request.body)), signature):
        raise unauthorized(
            "X-Twilio-Signature does not match: wrong auth token, or CALLPULSE_PUBLIC_URL "
            "differs from the URL configured in Twilio."
        )


def to_events(request: WebhookRequest) -> list[Event]:
    """Map one status callback to a v1 event; statuses we do not count map to none."""
    form = form_fields(request.body)
    call_id = text(form, "CallSid", "CallSid")
    status = text(form, "CallStatus", "CallStatus").lower()
    raw_time = optional_text(form, "Timestamp", "Timestamp")
    # Timestamp comes only with StatusCallbackEvent; otherwise arrival time is the best we have.
    occurred_at = rfc2822(raw_time, "Timestamp") if raw_time else request.received_at
    event: dict[str, Any] = {
        "event_id": event_id(NAME, call_id, status, raw_time),
        "call_id": call_id,
        "occurred_at": occurred_at.isoformat(),
        **attribution(request.query),
    }
    direction = (form.get("Direction") or "").lower()
    if direction:
        event["direction"] = "inbound" if direction == "inbound" else "outbound"
    parties = {"from": form.get("From") or None, "to": form.get("To") or None}
    if status in _STARTED:
        return [{**event, "type": "call.started", **_present(parties)}]
    if status == "in-progress":
        event.pop("direction", None)
        return [{**event, "type": "call.answered"}]
    if status in _ENDED:
        ended = {**event, "type": "call.ended", "end_status": _ENDED[status], **_present(parties)}
        if status == "completed" and (form.get("AnsweredBy") or "").startswith("machine"):
            ended["end_status"] = "voicemail"  # answering-machine detection said so
        duration = optional_text(form, "CallDuration", "CallDuration")
        if duration is not None:
            ended["talk_seconds"] = duration
        return [ended]
    return []


def _present(fields: dict[str, str | None]) -> dict[str, str]:
    return {key: value for key, value in fields.items() if value}


PROVIDER = Provider(
    name=NAME,
    title="Twilio",
    description=(
        "Twilio Voice status callbacks (`application/x-www-form-urlencoded`), signed with "
        "`X-Twilio-Signature` over CALLPULSE_PUBLIC_URL + path + query. CallStatus "
        "initiated/ringing → call.started, in-progress → call.answered, "
        "completed/busy/no-answer/failed/canceled → call.ended (CallDuration → talk_seconds)."
    ),
    secret_env=ENV,
    media_types=(FORM,),
    configured=configured,
    verify=verify,
    to_events=to_events,
)
