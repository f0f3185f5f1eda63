"""Server-Sent Events: `kpi` snapshots and `alert` transitions, live."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from schemas.kpis import RepSnapshot
from services.api.auth import ViewerDep
from services.api.context import ContextDep
from services.api.readmodel import Update
from services.api.routes.schemas import TeamFilter, problems

router = APIRouter(prefix="/v1", tags=["stream"], responses=problems(401, 422))

PING_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30


def _event(update: Update) -> ServerSentEvent:
    kind = "kpi" if isinstance(update, RepSnapshot) else "alert"
    return ServerSentEvent(data=update.model_dump_json(), event=kind)


@router.get(
    "/stream",
    summary="Live KPI snapshots and alerts",
    description="`text/event-stream`. First a `kpi` event per rep with the current snapshot "
    "(a RepSnapshot), then a `kpi` event at each new snapshot and an `alert` event at each "
    "alert transition, of one team or all. A client that cannot keep up is disconnected; "
    "EventSource reconnects and receives the current state again.",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def stream(ctx: ContextDep, _: ViewerDep, team_id: TeamFilter = None) -> EventSourceResponse:
    """Subscribe to one team's updates (or all)."""
    readmodel = ctx.readmodel
    subscription = readmodel.subscribe(team_id, maxsize=ctx.settings.SSE_QUEUE_SIZE)

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            for snapshot in readmodel.snapshots(team_id):
                yield _event(snapshot)
            while (update := await subscription.get()) is not None:
                yield _event(update)
        finally:
            readmodel.unsubscribe(subscription)

    return EventSourceResponse(events(), ping=PING_SECONDS, send_timeout=SEND_TIMEOUT_SECONDS)
