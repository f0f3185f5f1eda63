"""Body decoding (JSON object, JSON array, NDJSON) and all-or-nothing v1 event validation.

Beyond the schema, ingest refuses what it could store but nobody could use: ids that cannot
stand in a URL path (`/v1/reps/{rep_id}/kpis`) and events dated too far ahead of the clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.events import (
    PATH_ID_FIELDS,
    PATH_ID_RULE,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOutcome,
    CallStarted,
    SurveyCompleted,
    call_events_adapter,
)
from services.ingest.errors import Rejection, invalid, unparseable

JSON = "application/json"
NDJSON = "application/x-ndjson"
EVENT_MEDIA_TYPES = (JSON, NDJSON)
ACCEPTED_BODIES = (
    "Send one event or an array of events as `application/json`, or one event per line as "
    "`application/x-ndjson`."
)
_UNSAFE_IN_PATH = re.compile(r"[/\\\x00-\x1f\x7f]")

MAX_REPORTED_ERRORS = 100
_MAX_MESSAGE = 300

# The discriminator tags; pydantic puts the matched tag first in each error's location.
_EVENT_TYPES = frozenset(
    model.model_fields["type"].default
    for model in (CallStarted, CallAnswered, CallEnded, CallOutcome, SurveyCompleted)
)


def decode_batch(body: bytes, kind: str, max_events: int) -> list[Any]:
    """Decode the body into raw items (400 when unparseable, 413 when too many)."""
    if kind == NDJSON:
        # Blank lines (a trailing newline, CRLF ends) carry no event; count before parsing.
        lines = [(n, line) for n, line in enumerate(body.split(b"\n"), 1) if line.strip()]
        _check_count(len(lines), max_events)
        return [_decode_line(number, line) for number, line in lines]
    items = _decode_json(body)
    _check_count(len(items), max_events)
    return items


def _check_count(count: int, max_events: int) -> None:
    if count > max_events:
        raise Rejection(
            413,
            "Too many events",
            f"The batch holds {count} events; at most {max_events} are accepted per request.",
            reason="too_many_events",
        )


def _decode_json(body: bytes) -> list[Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise unparseable(
            f"The body is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}. "
            + ACCEPTED_BODIES
        ) from exc
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise invalid(
        "The body must be an event object or an array of events. " + ACCEPTED_BODIES,
        [{"path": "", "message": "expected an object or an array"}],
    )


def _decode_line(number: int, line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise unparseable(
            f"Line {number} is not valid JSON (column {exc.colno}): {exc.msg}. " + ACCEPTED_BODIES
        ) from exc


def validate_batch(
    items: Sequence[Any], *, max_ahead: timedelta | None = None, now: datetime | None = None
) -> list[CallEvent]:
    """Validate every item; any violation rejects the whole batch with each error's path.

    With `max_ahead`, an event whose occurred_at is later than `now` plus it is a violation.
    """
    try:
        # One call for the whole list: per-item calls cost a Python round trip each.
        events = call_events_adapter.validate_python(items)
    except ValidationError as exc:
        errors = _errors(exc)
        raise invalid(
            f"{len(errors)} schema violation(s); no event of the batch was accepted.",
            errors[:MAX_REPORTED_ERRORS],
        ) from exc
    latest = None if max_ahead is None else (now or datetime.now(UTC)) + max_ahead
    errors = _usable(events, latest, max_ahead)
    if errors:
        raise invalid(
            f"{len(errors)} violation(s); no event of the batch was accepted.",
            errors[:MAX_REPORTED_ERRORS],
        )
    return events


def _usable(
    events: Sequence[CallEvent], latest: datetime | None, max_ahead: timedelta | None
) -> list[dict[str, str]]:
    """Errors of events the schema accepts but no one could query or count."""
    errors = []
    for index, event in enumerate(events):
        for name in PATH_ID_FIELDS:
            value = getattr(event, name)
            if value is not None and (value in (".", "..") or _UNSAFE_IN_PATH.search(value)):
                errors.append({"path": f"{index}.{name}", "message": PATH_ID_RULE})
        if latest is not None and event.occurred_at > latest:
            errors.append(
                {
                    "path": f"{index}.occurred_at",
                    "message": f"{event.occurred_at.isoformat()} is more than {max_ahead} ahead "
                    "of the server's clock (CALLPULSE_MAX_FUTURE_SECONDS); check the sender's "
                    "clock and time zone offset",
                }
            )
    return errors


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        index, *loc = err["loc"]  # the item's index comes first
        if loc and loc[0] in _EVENT_TYPES:
            loc = loc[1:]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["type"]
        path = ".".join(str(part) for part in [index, *loc] if part != "")
        out.append({"path": path, "message": err["msg"][:_MAX_MESSAGE]})
    return out
