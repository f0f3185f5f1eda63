"""Server-Sent Events: `kpi` snapshots and `alert` transitions, live, resumable for alerts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from schemas.alerts import Alert
from schemas.competitions import Standings
from schemas.kpis import RepSnapshot
from services.api.auth import ViewerDep
from services.api.competitions import wiring as competitions_wiring
from services.api.competitions.feed import merged
from services.api.context import ContextDep
from services.api.readmodel import AlertEvent
from services.api.routes.schemas import TeamFilter, problems

router = APIRouter(prefix="/v1", tags=["stream"], responses=problems(401, 422))

PING_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30
REPLAY_PAGE = 500


_KPI_JSON: OrderedDict[tuple[str, datetime], str] = OrderedDict()
_KPI_JSON_SIZE = 4096


def _kpi(snapshot: RepSnapshot) -> ServerSentEvent:
    # One update goes to every client of the team: serialise it once, not once per client.
    key = (snapshot.rep_id, snapshot.as_of)
    data = _KPI_JSON.get(key)
    if data is None:
        data = _KPI_JSON[key] = snapshot.model_dump_json()
        if len(_KPI_JSON) > _KPI_JSON_SIZE:
            _KPI_JSON.popitem(last=False)
    return ServerSentEvent(data=data, event="kpi")


def _alert(alert: Alert, seq: int | None) -> ServerSentEvent:
    return ServerSentEvent(
        data=alert.model_dump_json(), event="alert", id=None if seq is None else str(seq)
    )


def parse_last_event_id(value: str | None) -> int | None:
    """The alert cursor a reconnecting client sends back; anything else is ignored."""
    if value is None or not value.strip().isdigit() or len(value.strip()) > 18:
        return None
    return int(value.strip())


@router.get(
    "/stream",
    summary="Live KPI snapshots and alerts",
    description="`text/event-stream`. First a `kpi` event per rep with the current snapshot "
    "(a RepSnapshot), then a `kpi` event at each new snapshot and an `alert` event (an Alert) "
    "at each alert transition, of one team or all; a `competition` event (Standings, first "
    "100 rows) whenever the standings of a competition of that team change."
    " Alert events carry an `id` that increases "
    "along the stream (the stream also sends one at its start); a client reconnecting with "
    "`Last-Event-ID` (EventSource does so by itself) is first sent, as they are now, the "
    "alerts that changed after that id, so no transition is missed. A client that cannot keep "
    "up is disconnected; on reconnection it receives the current KPI state again.",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def stream(
    request: Request,
    ctx: ContextDep,
    _: ViewerDep,
    team_id: TeamFilter = None,
    last_event_id: Annotated[
        str | None, Header(description="The id of the last event received, to resume from.")
    ] = None,
) -> EventSourceResponse:
    """Subscribe to one team's updates (or all)."""
    readmodel, alerts = ctx.readmodel, ctx.alerts
    # Subscribe before reading the cursor: a transition is then either already stored (and
    # replayed, or older than the cursor) or still to come through the subscription.
    subscription = readmodel.subscribe(team_id, maxsize=ctx.settings.SSE_QUEUE_SIZE)
    competitions = competitions_wiring.service_of(request.app)
    boards = competitions.subscribe(team_id)
    try:
        latest = alerts.feed.cursor
        stored = await alerts.latest_seq()
        if latest is None:  # the feed is not running (an embedding app without alert_tasks)
            latest = stored
        resume = parse_last_event_id(last_event_id)
        if resume is not None and resume > stored:
            resume = None  # an id this database never gave: start afresh
    except BaseException:
        readmodel.unsubscribe(subscription)
        competitions.unsubscribe(boards)
        raise

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            cursor = latest if resume is None else resume
            if resume is None:
                # Gives a fresh client a point to resume from before any alert arrives.
                yield ServerSentEvent(id=str(cursor))
            for snapshot in readmodel.snapshots(team_id):
                yield _kpi(snapshot)
            # Page by page; live updates queue meanwhile (a long replay may overflow the
            # queue: the client is then dropped and resumes from the last id it got).
            while resume is not None:
                page = await alerts.since(cursor, team_id, limit=REPLAY_PAGE)
                for seq, alert in page:
                    cursor = seq
                    yield _alert(alert, seq)
                if len(page) < REPLAY_PAGE:
                    break
            async for update in merged(subscription, boards):
                if isinstance(update, Standings):
                    yield ServerSentEvent(data=update.model_dump_json(), event="competition")
                elif isinstance(update, AlertEvent):
                    if update.seq is not None:
                        if update.seq <= cursor:
                            continue  # replayed above, or from before this stream's start
                        cursor = update.seq
                    yield _alert(update.alert, update.seq)
                else:
                    yield _kpi(update)
        finally:
            readmodel.unsubscribe(subscription)
            competitions.unsubscribe(boards)

    return EventSourceResponse(events(), ping=PING_SECONDS, send_timeout=SEND_TIMEOUT_SECONDS)
