"""Ingest routes: `POST /v1/events` and `POST /v1/webhooks/{provider}`, added by install()."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field

from schemas.events import CallEvent
from services.ingest.config import IngestSettings
from services.ingest.errors import Rejection
from services.ingest.intake import media_type, read_body
from services.ingest.metrics import IngestMetrics
from services.ingest.openapi import (
    events_request_body,
    problem_responses,
    webhook_request_body,
)
from services.ingest.parsing import EVENT_MEDIA_TYPES, decode_batch, validate_batch
from services.ingest.providers import PROVIDERS
from services.ingest.providers.base import Provider, WebhookRequest, not_enabled
from services.ingest.publisher import EventPublisher, PublishUnavailable
from services.ingest.signing import StandardWebhookVerifier
from services.kit.logging import mask_phone

log = structlog.get_logger(__name__)

EVENTS_ROUTE = "/v1/events"
WEBHOOK_ROUTE = "/v1/webhooks/{provider}"
NATIVE = "callpulse"
"""The `provider` label of `POST /v1/events`."""

_WEBHOOK_NOTE = (
    " Where the payload names no agent, the rep comes from the `rep` query parameter of the "
    "callback URL (`team` and `campaign` likewise). Provider events that carry no KPI fact are "
    "acknowledged with `accepted: 0`. An unconfigured secret answers 404."
)


class Accepted(BaseModel):
    """The events of the request are durable."""

    accepted: int = Field(ge=0, description="Number of events made durable.")


class _Ingest:
    """The request handling behind the routes: settings, publisher and metrics bound once."""

    def __init__(
        self, settings: IngestSettings, publisher: EventPublisher, metrics: IngestMetrics
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.metrics = metrics
        self.verifier = StandardWebhookVerifier(settings.WEBHOOK_SECRET)
        self.max_ahead = timedelta(seconds=settings.MAX_FUTURE_SECONDS)

    @contextmanager
    def observed(self, route: str, provider: str) -> Iterator[None]:
        """Count the request by its final status, and rejections by reason."""
        status = "500"
        with self.metrics.in_flight.track_inprogress():
            try:
                yield
                status = "202"
            except Rejection as exc:
                status = str(exc.status)
                self.metrics.rejected.labels(exc.reason).inc()
                log.info(
                    "ingest_rejected",
                    route=route,
                    provider=provider,
                    status=exc.status,
                    reason=exc.reason,
                    detail=exc.detail,
                )
                raise
            finally:
                self.metrics.requests.labels(route, provider, status).inc()

    async def events(self, request: Request) -> Response:
        """Handle `POST /v1/events`: type, size, signature, parse, validate, publish."""
        kind = media_type(request, EVENT_MEDIA_TYPES)
        body = await read_body(request, self.settings.MAX_BODY_BYTES)
        try:
            self.verifier.verify(body, request.headers)
        except Rejection as exc:
            raise _with_signing_hint(exc) from exc
        items = decode_batch(body, kind, self.settings.MAX_EVENTS)
        return await self.publish(validate_batch(items, max_ahead=self.max_ahead), NATIVE)

    async def webhook(self, request: Request, adapter: Provider) -> Response:
        """Handle one provider's webhook: its own type, signature and mapping."""
        if not adapter.configured(self.settings):
            raise not_enabled(adapter.name, adapter.secret_env)
        kind = media_type(request, adapter.media_types)
        body = await read_body(request, self.settings.MAX_BODY_BYTES)
        hook = WebhookRequest(
            body=body,
            media_type=kind,
            headers=request.headers,
            query=request.query_params,
            url=_signed_url(request, self.settings.PUBLIC_URL),
            received_at=datetime.now(UTC),
        )
        adapter.verify(hook, self.settings)
        items: list[Any] = adapter.to_events(hook)
        for item in items:
            log.debug(
                "webhook_mapped",
                provider=adapter.name,
                call_id=item.get("call_id"),
                type=item.get("type"),
                caller=mask_phone(item.get("from")),
                callee=mask_phone(item.get("to")),
            )
        return await self.publish(validate_batch(items, max_ahead=self.max_ahead), adapter.name)

    async def publish(self, events: Sequence[CallEvent], provider: str) -> Response:
        """Make the batch durable; any failure is a 503 the sender retries."""
        if events:
            started = time.perf_counter()
            try:
                await self.publisher.publish(events)
            except PublishUnavailable as exc:
                raise _unavailable(exc.retry_after, exc.reason) from exc
            except Exception as exc:
                # Whatever broke, the events are not durable: the sender must retry, not drop.
                log.exception("publish_crashed", provider=provider, events=len(events))
                raise _unavailable(5, "the event log failed") from exc
            finally:
                self.metrics.publish_seconds.observe(time.perf_counter() - started)
            self.metrics.events.labels(provider).inc(len(events))
        # debug: at info, one line per single-event request is a large share of its CPU time
        log.debug("events_accepted", provider=provider, count=len(events))
        return accepted(len(events))


def install(
    app: FastAPI,
    settings: IngestSettings,
    publisher: EventPublisher,
    registry: CollectorRegistry,
) -> None:
    """Add the ingest routes to `app`, publishing to `publisher`, metrics on `registry`."""
    settings.require_production_secrets()
    ingest = _Ingest(settings, publisher, IngestMetrics.register(registry))
    # Routes go on the app's own router: an included router adds a second route match per request.
    router = app.router

    @router.post(
        EVENTS_ROUTE,
        status_code=202,
        response_model=Accepted,
        response_description="Every event of the request is durable.",
        summary="Ingest callpulse v1 events",
        description=(
            "Accepts one event or a JSON array of events (`application/json`), or NDJSON, one "
            "event per line (`application/x-ndjson`); other content types get 415. At most "
            f"{settings.MAX_EVENTS} events and {settings.MAX_BODY_BYTES} bytes. Ids that the "
            "API puts in URL paths (`rep_id`, `team_id`, `campaign_id`) may not contain `/`, "
            "`\\` or control characters, and an event dated more than "
            f"{settings.MAX_FUTURE_SECONDS:g} s ahead of the server's clock is rejected (422). "
            "Requests are signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, "
            "`webhook-signature`; 5-minute tolerance). A batch is all-or-nothing; `202` means "
            "every event is durable. Retries must reuse `event_id`s."
        ),
        responses=problem_responses(400, 401, 413, 415, 422, 503),
        openapi_extra={"requestBody": events_request_body(settings.MAX_EVENTS)},
        tags=["ingest"],
    )
    async def post_events(request: Request) -> Response:
        with ingest.observed(EVENTS_ROUTE, NATIVE):
            return await ingest.events(request)

    for adapter in PROVIDERS.values():
        _add_webhook_route(router, ingest, adapter)

    @router.post(WEBHOOK_ROUTE, include_in_schema=False)
    async def post_unknown_webhook(provider: str) -> Response:
        with ingest.observed(WEBHOOK_ROUTE, "unknown"):
            raise Rejection(
                404,
                "Unknown provider",
                f"No adapter for {provider[:64]!r}; known: {', '.join(PROVIDERS)}.",
                reason="unknown_provider",
            )


def _add_webhook_route(router: APIRouter, ingest: _Ingest, adapter: Provider) -> None:
    """One documented path per provider: each takes its own content types and signature."""

    async def post_webhook(request: Request) -> Response:
        with ingest.observed(WEBHOOK_ROUTE, adapter.name):
            return await ingest.webhook(request, adapter)

    router.add_api_route(
        WEBHOOK_ROUTE.format(provider=adapter.name),
        post_webhook,
        methods=["POST"],
        status_code=202,
        response_model=Accepted,
        response_description="The mapped events are durable (0 when none carry a KPI fact).",
        operation_id=f"post_webhook_{adapter.name}",
        summary=f"Ingest {adapter.title} webhooks",
        description=adapter.description + _WEBHOOK_NOTE,
        responses=problem_responses(400, 401, 404, 413, 415, 422, 503),
        openapi_extra={"requestBody": webhook_request_body(adapter)},
        tags=["ingest"],
    )


HOW_TO_SIGN = (
    "Standard Webhooks: `webhook-id` (unique per message, repeated by a retry), "
    "`webhook-timestamp` (Unix seconds, within 5 minutes of the server's clock) and "
    "`webhook-signature: v1,<base64 of HMAC-SHA256 over '<id>.<timestamp>.<body>'>`, keyed with "
    "the base64-decoded part of the `whsec_` secret after the prefix. The secret is the server's "
    "CALLPULSE_WEBHOOK_SECRET, or for `callpulse run` the file webhook_secret in its data folder "
    "(.callpulse/ by default); `callpulse send` and `callpulse simulate` sign with it."
)


def _with_signing_hint(exc: Rejection) -> Rejection:
    """A signature 401 of `POST /v1/events`, with how to sign as a problem extension member."""
    if exc.status != 401:
        return exc
    return Rejection(
        exc.status,
        exc.title,
        exc.detail,
        reason=exc.reason,
        headers=exc.headers,
        how_to_sign=HOW_TO_SIGN,
    )


def accepted(count: int) -> Response:
    """The 202 `Accepted` body, rendered directly: cheaper than response_model serialisation."""
    return Response(b'{"accepted":%d}' % count, status_code=202, media_type="application/json")


def _unavailable(retry_after: int, reason: str) -> Rejection:
    return Rejection(
        503,
        "Event log unavailable",
        f"The events were not stored ({reason}); retry the same request later.",
        reason="unavailable",
        headers={"Retry-After": str(max(1, retry_after))},
    )


def _signed_url(request: Request, public_url: str | None) -> str:
    """The URL as the provider called it: behind a proxy only PUBLIC_URL knows the host."""
    if public_url is None:
        return str(request.url)
    query = request.url.query
    return public_url + request.url.path + (f"?{query}" if query else "")
