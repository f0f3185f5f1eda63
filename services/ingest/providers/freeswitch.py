"""FreeSWITCH mod_json_cdr posts (raw JSON or `cdr=` form), behind HTTP basic auth."""

from __future__ import annotations

import base64
import hmac
from typing import Any
from urllib.parse import unquote

from services.ingest.config import IngestSettings
from services.ingest.errors import invalid, unauthorized
from services.ingest.providers.base import (
    FORM,
    JSON,
    Event,
    Provider,
    WebhookRequest,
    attribution,
    epoch,
    event_id,
    form_fields,
    json_object,
    obj,
    secret,
)

NAME = "freeswitch"
ENV = "CALLPULSE_FREESWITCH_BASIC_AUTH"
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="callpulse", charset="UTF-8"'}

_UNANSWERED = {
    "USER_BUSY": "busy",
    "CALL_REJECTED": "busy",
    "NO_ANSWER": "no_answer",
    "NO_USER_RESPONSE": "no_answer",
    "ALLOTTED_TIMEOUT": "no_answer",
    "RECOVERY_ON_TIMER_EXPIRE": "no_answer",
    "ORIGINATOR_CANCEL": "canceled",
    "LOSE_RACE": "canceled",
}


def configured(settings: IngestSettings) -> bool:
    """FreeSWITCH needs the `user:pass` that json_cdr.conf's `cred` sends."""
    return settings.FREESWITCH_BASIC_AUTH is not None


def verify(request: WebhookRequest, settings: IngestSettings) -> None:
    """Check `Authorization: Basic` against CALLPULSE_FREESWITCH_BASIC_AUTH in constant time."""
    expected = secret(settings.FREESWITCH_BASIC_AUTH, NAME, ENV)
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise unauthorized("Missing basic credentials.", reason="unsigned", headers=_CHALLENGE)
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise unauthorized("Malformed basic credentials.", headers=_CHALLENGE) from exc
    if not hmac.compare_digest(given, expected.encode()):
        raise unauthorized("Wrong basic credentials.", headers=_CHALLENGE)


def to_events(request: WebhookRequest) -> list[Event]:
    """Map one CDR (one call leg) to a self-contained call.ended."""
    cdr = _cdr(request)
    raw = obj(cdr, "variables", "variables")
    # With encode-values=true (mod_json_cdr's default) every value is URL-encoded.
    var = {key: unquote(value) for key, value in raw.items() if isinstance(value, str)}
    call_id = var.get("uuid") or var.get("call_uuid")
    if not call_id:
        raise invalid(
            "variables.uuid is required.",
            [{"path": "variables.uuid", "message": "Field required"}],
        )
    ended_at = epoch(var.get("end_epoch"), "variables.end_epoch")
    if ended_at is None:
        raise invalid(
            "variables.end_epoch is required.",
            [{"path": "variables.end_epoch", "message": "Field required"}],
        )
    started = epoch(var.get("start_epoch"), "variables.start_epoch")
    answered = epoch(var.get("answer_epoch"), "variables.answer_epoch")  # "0": never answered
    cause = var.get("hangup_cause", "")
    event: dict[str, Any] = {
        "type": "call.ended",
        "event_id": event_id(NAME, call_id, "call.ended", var.get("end_epoch")),
        "call_id": call_id,
        "occurred_at": ended_at.isoformat(),
        "end_status": "completed" if answered else _UNANSWERED.get(cause, "failed"),
        **attribution(
            request.query,
            rep_id=var.get("callpulse_rep_id"),
            team_id=var.get("callpulse_team_id"),
            campaign_id=var.get("callpulse_campaign_id"),
        ),
    }
    # FreeSWITCH's `direction` is the leg's, seen from the switch; a dialplan that knows the
    # call's business direction sets `callpulse_direction`.
    direction = var.get("callpulse_direction") or var.get("direction")
    if direction in ("inbound", "outbound"):
        event["direction"] = direction
    if started:
        event["started_at"] = started.isoformat()
    if answered:
        event["answered_at"] = answered.isoformat()
    if var.get("billsec"):
        event["talk_seconds"] = var["billsec"]
    caller = var.get("caller_id_number") or var.get("effective_caller_id_number")
    callee = var.get("destination_number") or var.get("callee_id_number")
    event.update({k: v for k, v in (("from", caller), ("to", callee)) if v})
    return [event]


def _cdr(request: WebhookRequest) -> dict[str, Any]:
    if request.media_type != FORM:
        return json_object(request.body)
    form = form_fields(request.body)
    if "cdr" not in form:
        raise invalid(
            "The form has no `cdr` field.", [{"path": "cdr", "message": "Field required"}]
        )
    value = form["cdr"].strip()
    if not value.startswith("{"):
        # json_cdr.conf `encode=base64` posts the document base64-encoded.
        try:
            return json_object(base64.b64decode(value, validate=True))
        except ValueError:  # binascii.Error, or non-ASCII text
            pass  # not base64 either: let the JSON error below say what is wrong
    return json_object(value.encode())


PROVIDER = Provider(
    name=NAME,
    title="FreeSWITCH",
    description=(
        "FreeSWITCH mod_json_cdr posts (raw JSON, or a `cdr=` form field), behind HTTP basic auth. "
        "Each CDR becomes one self-contained call.ended with started_at/answered_at/talk_seconds "
        "from start_epoch/answer_epoch/billsec and end_status from hangup_cause."
    ),
    secret_env=ENV,
    media_types=(JSON, FORM),
    configured=configured,
    verify=verify,
    to_events=to_events,
)
