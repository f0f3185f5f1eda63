"""Body decoding (JSON object, JSON array, NDJSON) and all-or-nothing v1 event validation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.events import (
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
            f"The body is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}."
        ) from exc
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise invalid(
        "The body must be an event object or an array of events.",
        [{"path": "", "message": "expected an object or an array"}],
    )


def _decode_line(number: int, line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise unparseable(
            f"Line {number} is not valid JSON (column {exc.colno}): {exc.msg}."
        ) from exc


def validate_batch(items: Sequence[Any]) -> list[CallEvent]:
    """Validate every item; any violation rejects the whole batch with each error's path."""
    try:
        # One call for the whole list: per-item calls cost a Python round trip each.
        return call_events_adapter.validate_python(items)
    except ValidationError as exc:
        errors = _errors(exc)
        raise invalid(
            f"{len(errors)} schema violation(s); no event of the batch was accepted.",
            errors[:MAX_REPORTED_ERRORS],
        ) from exc


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
