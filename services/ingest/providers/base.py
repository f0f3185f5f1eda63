"""What every provider adapter shares: the request view, ids, field access and time parsing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from pydantic import SecretStr

from services.ingest.config import IngestSettings
from services.ingest.errors import Rejection, invalid, unparseable

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

Event = dict[str, Any]
"""A v1 event in its wire form (`from`, RFC 3339 strings); validated by the route."""


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of a provider's HTTP request an adapter may look at."""

    body: bytes
    media_type: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    url: str
    """The URL as the provider called it: CALLPULSE_PUBLIC_URL + path + query when set."""
    received_at: datetime


@dataclass(frozen=True)
class Provider:
    """One native webhook format: its media types, its secret, its check and its mapping."""

    name: str
    title: str
    description: str
    secret_env: str
    media_types: tuple[str, ...]
    configured: Callable[[IngestSettings], bool]
    verify: Callable[[WebhookRequest, IngestSettings], None]
    to_events: Callable[[WebhookRequest], list[Event]]


def not_enabled(provider: str, env: str) -> Rejection:
    """404: the adapter exists but its secret is not configured."""
    return Rejection(
        404,
        "Provider not enabled",
        f"The {provider} adapter is not enabled on this server: {env} is not set.",
        reason="provider_disabled",
    )


def secret(value: SecretStr | None, provider: str, env: str) -> str:
    """The configured secret's value, or the not-enabled rejection."""
    if value is None:
        raise not_enabled(provider, env)
    return value.get_secret_value()


def event_id(provider: str, call_id: str, status: str, timestamp: object) -> str:
    """`{provider}:{call_id}:{status}:{timestamp}`, hashed when longer than an id may be."""
    raw = f"{provider}:{call_id}:{status}:{'' if timestamp is None else timestamp}"
    if len(raw) <= 200:
        return raw
    return f"{provider}:sha256:{hashlib.sha256(raw.encode()).hexdigest()}"


def json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body (400 when unparseable, 422 when not an object)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise unparseable(
            f"The body is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}."
        ) from exc
    if not isinstance(value, dict):
        raise invalid("The body must be a JSON object.", [_error("", "expected an object")])
    return value


def form_fields(body: bytes) -> dict[str, str]:
    """Decode a form body, keeping the first value of each field."""
    return {name: values[0] for name, values in form_multi(body).items()}


def form_multi(body: bytes) -> dict[str, list[str]]:
    """Decode a form body into every value of each field."""
    try:
        text = body.decode("ascii")
        return parse_qs(text, keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise unparseable(
            "The body is not application/x-www-form-urlencoded (ASCII, at most 1000 fields)."
        ) from exc


def obj(data: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    """A required nested object."""
    value = data.get(key)
    if not isinstance(value, dict):
        raise invalid(f"{path} must be an object.", [_error(path, "expected an object")])
    return value


def text(data: Mapping[str, Any], key: str, path: str) -> str:
    """A required non-empty string (numbers are accepted as their decimal text)."""
    value = optional_text(data, key, path)
    if value is None:
        raise invalid(f"{path} is required.", [_error(path, "Field required")])
    return value


def optional_text(data: Mapping[str, Any], key: str, path: str) -> str | None:
    """An optional string; ints are ids too (Aircall), other types are errors."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(f"{path} must be a string.", [_error(path, "expected a string")])
    return str(value)


def epoch(value: object, path: str) -> datetime | None:
    """Unix seconds (int, float or decimal text) as an aware UTC datetime; 0 or empty → None."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
        if seconds != seconds or not 0 <= seconds < 32_503_680_000:  # NaN, or beyond year 3000
            raise ValueError(value)
    except (TypeError, ValueError) as exc:
        raise invalid(
            f"{path} is not a Unix time.", [_error(path, "expected Unix seconds")]
        ) from exc
    return None if seconds == 0 else datetime.fromtimestamp(seconds, tz=UTC)


def rfc2822(value: str, path: str) -> datetime:
    """An RFC 2822 date (`Mon, 16 Aug 2010 03:45:01 +0000`) as an aware datetime."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"{path} is not an RFC 2822 date.", [_error(path, "bad date")]) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: str, path: str) -> datetime:
    """An ISO 8601 timestamp; providers that omit the offset mean UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(f"{path} is not an ISO 8601 time.", [_error(path, "bad time")]) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def attribution(query: Mapping[str, str], **found: str | None) -> dict[str, str]:
    """rep_id/team_id/campaign_id from the payload, else the URL's `rep`/`team`/`campaign`."""
    out = {}
    for field, param in (("rep_id", "rep"), ("team_id", "team"), ("campaign_id", "campaign")):
        value = found.get(field) or query.get(param)
        if value:
            out[field] = value
    return out


def _error(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}
