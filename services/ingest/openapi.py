"""OpenAPI fragments for routes that read their raw body: request schemas and problem responses."""

from __future__ import annotations

from typing import Any

from schemas.events import call_event_adapter
from services.ingest.providers.base import Provider

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Schema violations: `path` is `<index>.<field>` within the batch.",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying the same request.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}

_DESCRIPTIONS = {
    400: "Unparseable body (for NDJSON, the detail names the line).",
    401: "Missing, bad or stale signature or credentials.",
    404: "Unknown provider, or its secret is not configured on this server.",
    405: "Method not allowed.",
    413: "Body larger than the byte limit, or more events than the event limit.",
    415: "Unsupported Content-Type.",
    422: "Schema violation; `errors` lists each field path. Nothing of the batch was accepted.",
    503: "The event log (Kafka) is unavailable; retry after `Retry-After` seconds.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries whose bodies are problem+json."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS.get(status, "Error."),
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        if status == 503:
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve pydantic's `$defs` references in place: the fragment must stand alone."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {**target, **{k: resolve(v) for k, v in node.items() if k != "$ref"}}
        # The discriminator mapping points into `$defs`; `const` on `type` says the same.
        return {
            key: resolve(value)
            for key, value in node.items()
            if key != "$defs" and not (key == "discriminator" and "oneOf" in node)
        }

    resolved: dict[str, Any] = resolve(schema)
    return resolved


EVENT_SCHEMA = _inline(call_event_adapter.json_schema())


def events_request_body(max_events: int) -> dict[str, Any]:
    """The `requestBody` of POST /v1/events (the route reads the raw body itself)."""
    return {
        "required": True,
        "description": (
            "One v1 event, an array of events, or NDJSON (one event per line). "
            f"At most {max_events} events per request; a batch is all-or-nothing."
        ),
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        EVENT_SCHEMA,
                        # The event limit is a 413, not a schema violation: see the description.
                        {"type": "array", "items": EVENT_SCHEMA},
                    ]
                }
            },
            "application/x-ndjson": {
                "schema": {
                    "type": "array",
                    "items": EVENT_SCHEMA,
                    "description": "The events, one JSON object per line.",
                }
            },
        },
    }


def webhook_request_body(provider: Provider) -> dict[str, Any]:
    """The `requestBody` of one provider's webhook route: its native payload."""
    return {
        "required": True,
        "description": f"The {provider.title} payload, as the provider sends it.",
        "content": {media: {"schema": {"type": "object"}} for media in provider.media_types},
    }
