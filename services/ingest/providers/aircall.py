"""Aircall call webhooks (JSON); authenticated by the webhook's `token` in the body."""

from __future__ import annotations

import hmac
import re
from typing import Any

from services.ingest.config import IngestSettings
from services.ingest.errors import unauthorized
from services.ingest.providers.base import (
    JSON,
    Event,
    Provider,
    WebhookRequest,
    attribution,
    epoch,
    event_id,
    json_object,
    obj,
    optional_text,
    secret,
    text,
)

NAME = "aircall"
ENV = "CALLPULSE_AIRCALL_TOKEN"

_ENDED = ("call.hungup", "call.ended")
_HANDLED = ("call.created", "call.answered", "call.tagged", *_ENDED)
# Reasons Aircall gives when the caller gave up; the others mean nobody picked up.
_CALLER_GAVE_UP = {"short_abandoned", "abandoned_in_ivr", "abandoned_in_classic"}


def configured(settings: IngestSettings) -> bool:
    """Aircall needs the webhook's token."""
    return settings.AIRCALL_TOKEN is not None


def verify(request: WebhookRequest, settings: IngestSettings) -> None:
    """Compare the body's `token` with the configured one in constant time."""
    expected = secret(settings.AIRCALL_TOKEN, NAME, ENV)
    token = json_object(request.body).get("token")
    if not isinstance(token, str) or not token:
        raise unauthorized("The body carries no `token`.", reason="unsigned")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise unauthorized("The body's `token` does not match CALLPULSE_AIRCALL_TOKEN.")


def to_events(request: WebhookRequest) -> list[Event]:
    """Map call.created/answered/hungup/ended/tagged; other events map to none."""
    doc = json_object(request.body)
    kind = text(doc, "event", "event")
    if kind not in _HANDLED:
        return []
    data = obj(doc, "data", "data")
    call_id = text(data, "id", "data.id")
    raw_time = optional_text(doc, "timestamp", "timestamp")
    sent_at = epoch(raw_time, "timestamp") or request.received_at
    started = epoch(data.get("started_at"), "data.started_at")
    answered = epoch(data.get("answered_at"), "data.answered_at")
    ended_at = epoch(data.get("ended_at"), "data.ended_at")
    user = data.get("user")
    user_id = optional_text(user, "id", "data.user.id") if isinstance(user, dict) else None
    event: dict[str, Any] = {
        "event_id": event_id(NAME, call_id, kind, raw_time),
        "call_id": call_id,
        **attribution(request.query, rep_id=user_id),
    }
    if kind == "call.answered":
        return [
            {**event, "type": "call.answered", "occurred_at": (answered or sent_at).isoformat()}
        ]
    if kind == "call.tagged":
        outcome = _outcome(data)
        if outcome is None:
            return []
        return [
            {
                **event,
                "type": "call.outcome",
                "outcome": outcome,
                "occurred_at": sent_at.isoformat(),
            }
        ]
    direction = data.get("direction")
    if direction in ("inbound", "outbound"):
        event["direction"] = direction
        event.update(_parties(data, direction))
    if kind == "call.created":
        return [{**event, "type": "call.started", "occurred_at": (started or sent_at).isoformat()}]
    ended: dict[str, Any] = {
        **event,
        "type": "call.ended",
        "occurred_at": (ended_at or sent_at).isoformat(),
        "end_status": _end_status(data, answered is not None),
    }
    if started:
        ended["started_at"] = started.isoformat()
    if answered:
        ended["answered_at"] = answered.isoformat()
        if ended_at and ended_at >= answered:
            # Aircall's `duration` includes ringing; talk time is answered → ended.
            ended["talk_seconds"] = (ended_at - answered).total_seconds()
    return [ended]


def _end_status(data: dict[str, Any], answered: bool) -> str:
    if answered:
        return "completed"
    if data.get("voicemail"):
        return "voicemail"
    reason = data.get("missed_call_reason")
    return "canceled" if isinstance(reason, str) and reason in _CALLER_GAVE_UP else "no_answer"


def _parties(data: dict[str, Any], direction: str) -> dict[str, str]:
    """Our line is `number.digits`, the other party `raw_digits`."""
    number = data.get("number")
    ours = number.get("digits") if isinstance(number, dict) else None
    theirs = data.get("raw_digits")
    caller, callee = (theirs, ours) if direction == "inbound" else (ours, theirs)
    return {
        key: value
        for key, value in (("from", caller), ("to", callee))
        if isinstance(value, str) and value
    }


def _outcome(data: dict[str, Any]) -> str | None:
    """The latest tag as an outcome: `Not Interested` → `not_interested`."""
    tags = data.get("tags")
    names = [
        tag["name"].strip()
        for tag in (tags if isinstance(tags, list) else [])
        if isinstance(tag, dict) and isinstance(tag.get("name"), str) and tag["name"].strip()
    ]
    if not names:
        return None
    return re.sub(r"[\s\-]+", "_", names[-1].lower())[:64]


PROVIDER = Provider(
    name=NAME,
    title="Aircall",
    description=(
        "Aircall call webhooks (JSON), authenticated by the body's `token`. call.created → "
        "call.started, call.answered → call.answered, call.hungup/call.ended → call.ended, "
        "call.tagged → call.outcome (latest tag); the rep is `data.user.id`."
    ),
    secret_env=ENV,
    media_types=(JSON,),
    configured=configured,
    verify=verify,
    to_events=to_events,
)
