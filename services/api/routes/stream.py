"""Server-Sent Events: `kpi` snapshots and `alert` transitions, live, resumable for alerts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from schemas.alerts import Alert
from schemas.competitions import Standings
from schemas.kpis import RepSnapshot
from services.api.auth import ViewerDep, scope_team
from services.api.competitions import wiring as competitions_wiring
from services.api.competitions.feed import merged
from services.api.competitions.service import CompetitionService
from services.api.context import ApiContext, ContextDep
from services.api.keys import Principal
from services.api.readmodel import AlertEvent
from services.api.routes.competitions import visible
from services.api.routes.schemas import TeamFilter, problems

router = APIRouter(prefix="/v1", tags=["stream"], responses=problems(401, 403, 422))

T = TypeVar("T")

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


def _competitions_of(
    ctx: ApiContext, principal: Principal, competitions: CompetitionService
) -> Callable[[Standings], Awaitable[bool]]:
    """Whether a `competition` event goes to this key: every one for a key without a team; for
    a team key those its team or one of its reps takes part in (decided once per competition
    and stream)."""
    shown: dict[int, bool] = {}

    async def wanted(standings: Standings) -> bool:
        if principal.team_id is None:
            return True
        seen = shown.get(standings.competition_id)
        if seen is None:
            found = await competitions.get(standings.competition_id)
            seen = found is not None and await visible(ctx, principal, found)
            if len(shown) < 10_000:
                shown[standings.competition_id] = seen
        return seen

    return wanted


async def _kept(
    updates: AsyncIterator[T], wanted: Callable[[Standings], Awaitable[bool]]
) -> AsyncIterator[T]:
    """`updates` without the standings not `wanted` (closing this closes `updates`)."""
    try:
        async for update in updates:
            if not isinstance(update, Standings) or await wanted(update):
                yield update
    finally:
        if isinstance(updates, AsyncGenerator):
            await updates.aclose()


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
    "up is disconnected; on reconnection it receives the current KPI state again. A key "
    "scoped to a team streams that team only (its competitions: those its team or one of "
    "its reps takes part in).",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def stream(
    request: Request,
    ctx: ContextDep,
    principal: ViewerDep,
    team_id: TeamFilter = None,
    last_event_id: Annotated[
        str | None, Header(description="The id of the last event received, to resume from.")
    ] = None,
) -> EventSourceResponse:
    """Subscribe to one team's updates (or all)."""
    team_id = scope_team(principal, team_id)
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

    wanted = _competitions_of(ctx, principal, competitions)

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
            async for update in _kept(merged(subscription, boards), wanted):
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
