"""Coaching reads: rep and team scorecards, the funnel, KPIs per campaign and the heatmap."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from schemas.coaching import (
    CampaignReport,
    Digest,
    DigestKind,
    DigestSettings,
    Funnel,
    Heatmap,
    Period,
    RepScorecard,
    TeamScorecard,
)
from services.api.auth import (
    AdminDep,
    RepDep,
    SupervisorDep,
    ViewerDep,
    check_rep,
    check_team,
    scope_team,
)
from services.api.coaching import repository as repo
from services.api.coaching import wiring
from services.api.coaching.repository import Subject
from services.api.coaching.service import CoachingService
from services.api.coaching.wiring import Coaching
from services.api.context import ContextDep
from services.api.keys import create_key
from services.api.routes.schemas import RepId, TeamFilter, TeamId, problems
from services.api.routes.wallboard import MEDIA_TYPES, SECURITY_HEADERS, STATIC
from services.kit.problems import Problem

router = APIRouter(tags=["coaching"], responses=problems(401, 403, 422))

PeriodQuery = Annotated[
    Period,
    Query(description="`day`, `week` (ISO, from Monday) or `month`, in the team's time zone."),
]
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
RepFilter = Annotated[str | None, Query(min_length=1, max_length=200, pattern=_PRINTABLE)]
CampaignFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=_PRINTABLE,
        description="One campaign; `none`: calls without a campaign_id.",
    ),
]


FIRST_DAY, LAST_DAY = date(1971, 1, 1), date(9998, 12, 31)
"""Room for a period's previous month and a heatmap's 53 weeks on either side."""


def _day(
    day: Annotated[
        date | None,
        Query(alias="date", description="A local date of the period; today if omitted."),
    ] = None,
) -> date | None:
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise Problem(422, "Invalid request", f"date must be within {FIRST_DAY}..{LAST_DAY}.")
    return day


DayQuery = Annotated[date | None, Depends(_day)]


async def _coaching(request: Request) -> Coaching:
    return wiring.of(request.app)


async def _service(coaching: Annotated[Coaching, Depends(_coaching)]) -> CoachingService:
    return coaching.service


CoachingDep = Annotated[CoachingService, Depends(_service)]


@router.get(
    "/v1/reps/{rep_id}/scorecard",
    response_model=RepScorecard,
    summary="A rep's scorecard with findings",
    description="Every KPI of the rep over the period with its target and progress, the team "
    "median and the rep's percentile in the team, the change against the previous period, and "
    "findings in zh and en from the findings table (docs/coaching.md), each with its numbers. "
    "Summed from the call history exactly as the reports are. A `rep` key reads its own rep "
    "only, a key scoped to a team its team's reps only.",
    responses=problems(404),
)
async def rep_scorecard(
    coaching: CoachingDep,
    ctx: ContextDep,
    principal: RepDep,
    rep_id: RepId,
    day: DayQuery,
    period: PeriodQuery = "week",
) -> RepScorecard:
    """A rep's scorecard (a `rep` key: its own only)."""
    await check_rep(ctx, principal, rep_id)
    return await coaching.rep_scorecard(rep_id, period, day)


@router.get(
    "/v1/teams/{team_id}/scorecard",
    response_model=TeamScorecard,
    summary="The team's scorecards, and who is below the team on each KPI",
    description="Each rep's scorecard, and per KPI the reps below the team median ranked by "
    "how far below (value / median - 1).",
)
async def team_scorecard(
    coaching: CoachingDep,
    principal: ViewerDep,
    team_id: TeamId,
    day: DayQuery,
    period: PeriodQuery = "week",
) -> Response:
    """A team's scorecard view (serialised once per cached team scores)."""
    check_team(principal, team_id)
    body = await coaching.team_scorecard_json(team_id, period, day)
    return Response(body, media_type="application/json")


@router.get(
    "/v1/reports/funnel",
    response_model=Funnel,
    summary="The sales funnel of a rep, team or campaign",
    description="Dials -> connects -> conversations -> conversions over the period with each "
    "stage's rate and the team's for comparison, and the period's dials that did not end in a "
    "sale by end status (unanswered) or outcome code (answered). Filters combine; a key scoped "
    "to a team reads its team only.",
)
async def funnel(
    coaching: CoachingDep,
    ctx: ContextDep,
    principal: ViewerDep,
    day: DayQuery,
    team_id: TeamFilter = None,
    rep_id: RepFilter = None,
    campaign_id: CampaignFilter = None,
    period: PeriodQuery = "week",
) -> Funnel:
    """A funnel."""
    team_id = scope_team(principal, team_id)
    if rep_id is not None:
        await check_rep(ctx, principal, rep_id)
    who = Subject(team_id=team_id, rep_id=rep_id, campaign_id=campaign_id)
    return await coaching.funnel(who, period, day)


@router.get(
    "/v1/reports/campaigns",
    response_model=CampaignReport,
    summary="KPIs per campaign",
    description="Every KPI per `campaign_id` of the calls over the period (`none`: calls "
    "without one), from the call history.",
)
async def campaigns(
    coaching: CoachingDep,
    principal: ViewerDep,
    day: DayQuery,
    team_id: TeamFilter = None,
    period: PeriodQuery = "week",
) -> CampaignReport:
    """KPIs per campaign."""
    return await coaching.campaigns(scope_team(principal, team_id), period, day)


@router.get(
    "/v1/reports/heatmap",
    response_model=Heatmap,
    summary="Best time to call: rates by local weekday and hour",
    description="Dials, connects and conversions, connect rate and conversion rate per local "
    "weekday x hour over the `weeks` weeks ending with `date` (today by default), in the "
    "team's time zone; cells with fewer than `min_dials` dials are marked sparse.",
)
async def heatmap(
    coaching: CoachingDep,
    principal: ViewerDep,
    day: DayQuery,
    team_id: TeamFilter = None,
    campaign_id: CampaignFilter = None,
    weeks: Annotated[int, Query(ge=1, le=53)] = 8,
    min_dials: Annotated[int, Query(ge=0, le=100_000)] = 20,
) -> Response:
    """A heatmap (serialised once per cached heatmap)."""
    _heatmap, body = await coaching.heatmap(
        scope_team(principal, team_id), campaign_id, weeks=weeks, min_dials=min_dials, day=day
    )
    return Response(body, media_type="application/json")


@router.get(
    "/v1/teams/{team_id}/digest",
    response_model=DigestSettings,
    summary="A team's digest settings",
    description="When the team's daily and weekly digests go out (team-local times), in which "
    "language, to the team's alert channels and to which e-mail addresses. The defaults until "
    "set; a team without settings gets no digests.",
)
async def get_digest(ctx: ContextDep, principal: ViewerDep, team_id: TeamId) -> DigestSettings:
    """A team's digest settings."""
    check_team(principal, team_id)
    async with ctx.sessions() as session:
        stored = (await repo.digest_settings(session, team_id)).get(team_id)
    return DigestSettings.model_validate(stored or {"enabled": False})


@router.put(
    "/v1/teams/{team_id}/digest",
    response_model=DigestSettings,
    summary="Set a team's digests (supervisor)",
    description="Replace the team's digest settings. Each daily and weekly digest is sent once "
    "per team and period, whichever replica reaches its time first.",
)
async def put_digest(
    ctx: ContextDep, principal: SupervisorDep, team_id: TeamId, body: DigestSettings
) -> DigestSettings:
    """Set a team's digest settings."""
    check_team(principal, team_id)
    async with ctx.sessions.begin() as session:
        await repo.set_digest_settings(
            session, team_id, body.model_dump(mode="json"), datetime.now(UTC)
        )
    return body


@router.get(
    "/v1/teams/{team_id}/digest/preview",
    response_model=Digest,
    summary="What a team's digest says, without sending it",
)
async def preview_digest(
    coaching: Annotated[Coaching, Depends(_coaching)],
    ctx: ContextDep,
    principal: ViewerDep,
    team_id: TeamId,
    day: DayQuery,
    kind: DigestKind = "daily",
) -> Digest:
    """A digest as it would be sent for the period of `date`."""
    check_team(principal, team_id)
    async with ctx.sessions() as session:
        stored = (await repo.digest_settings(session, team_id)).get(team_id)
    settings = DigestSettings.model_validate(stored or {})
    timezone = await coaching.service.timezone(team_id)
    local_day = day or datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()
    at = datetime.combine(local_day, settings.daily_at, tzinfo=ZoneInfo(timezone))
    return await coaching.scheduler.compose(team_id, kind, local_day, settings.language, at)


class WhoAmI(BaseModel):
    """The calling key's role and, for a `rep` key, its rep; for a team key, its team."""

    role: str
    rep_id: str | None = None
    team_id: str | None = None


@router.get(
    "/v1/coaching/whoami",
    response_model=WhoAmI,
    response_model_exclude_none=True,
    summary="The calling key's role and rep (or team)",
)
async def whoami(principal: RepDep) -> WhoAmI:
    """Who the coaching page is for."""
    return WhoAmI(role=principal.role, rep_id=principal.rep_id, team_id=principal.team_id)


class RepKeyOut(BaseModel):
    """A new `rep` key: `key` is shown this once."""

    id: int
    name: str
    rep_id: str
    key: str


@router.post(
    "/v1/reps/{rep_id}/keys",
    response_model=RepKeyOut,
    status_code=201,
    summary="Create a key restricted to one rep's own scorecard (admin)",
    description="The key has the `rep` role: it reads `/v1/reps/{rep_id}/scorecard` of this "
    "rep (and the coaching page showing it), nothing else. Revoke it with `callpulse keys "
    "revoke`.",
)
async def create_rep_key(ctx: ContextDep, _: AdminDep, rep_id: RepId) -> RepKeyOut:
    """A rep key."""
    made = await create_key(ctx.sessions, f"rep {rep_id}", "rep", rep_id=rep_id)
    return RepKeyOut(id=made.info.id, name=made.info.name, rep_id=rep_id, key=made.key)


class TeamKeyIn(BaseModel):
    """A key scoped to one team: who uses it and what it may do there."""

    name: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE)
    role: Literal["viewer", "supervisor"] = "viewer"


class TeamKeyOut(BaseModel):
    """A new team key: `key` is shown this once."""

    id: int
    name: str
    role: str
    team_id: str
    key: str


@router.post(
    "/v1/teams/{team_id}/keys",
    response_model=TeamKeyOut,
    status_code=201,
    summary="Create a key scoped to one team (admin)",
    description="A `viewer` or `supervisor` key that reads (and, a supervisor, acts on) this "
    "team only: its KPIs, leaderboard, reps, alerts, stream, reports, coaching views and the "
    "competitions its team or one of its reps takes part in; another team's is a 403, lists "
    "spanning teams keep its team. Admin keys are never scoped. Revoke it with `callpulse "
    "keys revoke`.",
)
async def create_team_key(
    ctx: ContextDep, _: AdminDep, team_id: TeamId, body: TeamKeyIn
) -> TeamKeyOut:
    """A team key."""
    made = await create_key(ctx.sessions, body.name, body.role, team_id=team_id)
    return TeamKeyOut(
        id=made.info.id, name=made.info.name, role=made.info.role, team_id=team_id, key=made.key
    )


@router.get(
    "/coaching",
    include_in_schema=False,
)
async def coaching_page() -> FileResponse:
    """The coaching page (its scripts are `static/coaching-*.js` ES modules, no build step).

    Served without a key, like the wallboard: the page asks for one and sends it as a bearer."""
    return FileResponse(
        STATIC / "coaching.html", media_type=MEDIA_TYPES[".html"], headers=SECURITY_HEADERS
    )
