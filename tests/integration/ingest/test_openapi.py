"""Schemathesis on /openapi.json: no input gives a 5xx or a response off the documented schema."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.unit.ingest.support import PROVIDER_SECRETS, FakePublisher

# Explicit values win over any CALLPULSE_* in the environment; the fake publisher connects nowhere.
SETTINGS = IngestSettings(WEBHOOK_SECRET=None, ENV="development", **PROVIDER_SECRETS)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SETTINGS, FakePublisher()))

# The response-side checks. The request-side ones (positive/negative data acceptance) judge the
# event JSON Schema of `schemas/` against its own pydantic validators, which are laxer (epoch
# integers pass as datetimes) and stricter (decimal places) than the generated schema says.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@schemathesis.serializer("application/x-ndjson")
def ndjson(_: Any, value: Any) -> bytes:
    """The documented NDJSON body is a list of events: one JSON line each."""
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


@schema.parametrize()
def test_every_documented_operation_conforms(case: Case[Any]) -> None:
    case.call_and_validate(checks=CHECKS)
