"""Competitions: definitions (admins write, every key reads), live standings, frozen results,
announcements, and the calls behind a rep's number (`/v1/reps/{rep_id}/calls`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from schemas.competitions import Competition, CompetitionIn, Result, Standings
from schemas.kpis import ADDITIVE, KpiName
from services.api.auth import AdminDep, RepDep, SupervisorDep, check_rep
from services.api.competitions import repository
from services.api.competitions.service import CompetitionService
from services.api.context import ApiContext, ContextDep
from services.api.keys import Principal
from services.api.routes.schemas import RepId, TeamFilter, problems
from services.kit.problems import Problem

router = APIRouter(prefix="/v1", tags=["competitions"], responses=problems(401, 422))

COMPONENTS: dict[str, tuple[str, ...]] = {
    "connect_rate": ("dials", "connects", "inbound_calls"),
    "avg_talk_seconds": ("talk_seconds", "connects"),
    "conversion_rate": ("conversions", "connects"),
    "avg_deal": ("revenue", "conversions"),
    "csat_avg": ("csat_sum", "csat_responses"),
}
"""The counters a rate or average is computed from (`schemas.kpis._ratios`)."""
MAX_RANGE = timedelta(days=400)


def _service(request: Request) -> CompetitionService:
    service: CompetitionService = request.app.state.callpulse_competitions
    return service


async def _service_dependency(request: Request) -> CompetitionService:
    return _service(request)


ServiceDep = Annotated[CompetitionService, Depends(_service_dependency)]
CompetitionId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _not_found(competition_id: int) -> Problem:
    return Problem(404, "Not found", f"No competition {competition_id}.")


def _not_taking_part(principal: Principal) -> Problem:
    return Problem(
        403, "Forbidden", f"Team {principal.team_id!r} does not take part in this competition."
    )


async def team_reps(ctx: ApiContext, team_id: str) -> set[str]:
    """The reps of a team: the roster's and those whose KPI snapshots name the team."""
    roster = await ctx.roster.cache.team(team_id)
    return {r.rep_id for r in roster.reps} | {s.rep_id for s in ctx.readmodel.snapshots(team_id)}


async def visible(ctx: ApiContext, principal: Principal, competition: Competition) -> bool:
    """Whether a key reads a competition: a team key those whose participants include its team
    or one of its reps; every other key all."""
    team_id = principal.team_id
    if team_id is None or team_id in competition.participants.team_ids:
        return True
    named = competition.participants.rep_ids
    return bool(named) and not (await team_reps(ctx, team_id)).isdisjoint(named)


async def _check_visible(
    service: CompetitionService, ctx: ApiContext, principal: Principal, competition_id: int
) -> None:
    if principal.team_id is None:
        return
    found = await service.get(competition_id)
    if found is None:
        raise _not_found(competition_id)
    if not await visible(ctx, principal, found):
        raise _not_taking_part(principal)


@router.get(
    "/competitions",
    response_model=list[Competition],
    summary="Competitions",
    description="Every competition, or those naming one team; a key scoped to a team lists "
    "those whose participants include its team or one of its reps.",
)
async def list_competitions(
    service: ServiceDep,
    ctx: ContextDep,
    principal: RepDep,
    team_id: TeamFilter = None,
) -> list[Competition]:
    """Every competition, or those naming one team."""
    found = await service.all(team_id)
    return [c for c in found if await visible(ctx, principal, c)]


@router.post(
    "/competitions",
    response_model=Competition,
    status_code=201,
    summary="Create a competition",
    description="A score (one KPI or a weighted sum of KPIs) over a one-off or recurring "
    "period, with optional quality minimums and targets. Scores count the call facts landing "
    "in the period, exactly as the KPI windows and reports count them.",
    responses=problems(403),
)
async def create(service: ServiceDep, _: AdminDep, body: CompetitionIn) -> Competition:
    """Create one."""
    return await service.create(body)


@router.get(
    "/competitions/{competition_id}",
    response_model=Competition,
    summary="A competition",
    responses=problems(403, 404),
)
async def get(
    service: ServiceDep, ctx: ContextDep, principal: RepDep, competition_id: CompetitionId
) -> Competition:
    """One competition."""
    found = await service.get(competition_id)
    if found is None:
        raise _not_found(competition_id)
    if not await visible(ctx, principal, found):
        raise _not_taking_part(principal)
    return found


@router.put(
    "/competitions/{competition_id}",
    response_model=Competition,
    summary="Replace a competition's definition",
    responses=problems(403, 404),
)
async def replace(
    service: ServiceDep, _: AdminDep, competition_id: CompetitionId, body: CompetitionIn
) -> Competition:
    """Replace one (its frozen results stay)."""
    found = await service.replace(competition_id, body)
    if found is None:
        raise _not_found(competition_id)
    return found


@router.delete(
    "/competitions/{competition_id}",
    status_code=204,
    summary="Delete a competition with its results",
    responses=problems(403, 404),
)
async def delete(service: ServiceDep, _: AdminDep, competition_id: CompetitionId) -> Response:
    """Delete one."""
    if not await service.delete(competition_id):
        raise _not_found(competition_id)
    return Response(status_code=204)


@router.get(
    "/competitions/{competition_id}/standings",
    response_model=Standings,
    summary="Live standings of the running period",
    description="Rank, score, gap to the leader and to the target of every participant; "
    "`tie_rule` states how ties rank. `period` is null between periods. `rows` is the page "
    "[`offset`, `offset + limit`) of `participants` rows in rank order. The same standings "
    "stream as SSE `competition` events on `/v1/stream` (first 100 rows).",
    responses=problems(403, 404),
)
async def standings(
    service: ServiceDep,
    ctx: ContextDep,
    principal: RepDep,
    competition_id: CompetitionId,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
) -> Response:
    """A page of the standings, serialised once per change."""
    await _check_visible(service, ctx, principal, competition_id)
    body = await service.standings_json(competition_id, offset, limit)
    if body is None:
        raise _not_found(competition_id)
    return Response(body, media_type="application/json")


@router.get(
    "/competitions/{competition_id}/results",
    response_model=list[Result],
    summary="Frozen results of ended periods, with winners",
    description="Newest period first: the champions of each period, the frozen standings and "
    "any corrections a late event made. `since`/`until` select periods by their end.",
    responses=problems(403, 404),
)
async def results(
    service: ServiceDep,
    ctx: ContextDep,
    principal: RepDep,
    competition_id: CompetitionId,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Result]:
    """The results."""
    await _check_visible(service, ctx, principal, competition_id)
    found = await service.results(competition_id, since=since, until=until, limit=limit)
    if found is None:
        raise _not_found(competition_id)
    return found


@router.get(
    "/competitions/{competition_id}/announcements",
    summary="What was announced on the teams' channels, with delivery state",
    responses=problems(403, 404),
)
async def announcements(
    service: ServiceDep, ctx: ContextDep, principal: SupervisorDep, competition_id: CompetitionId
) -> list[dict[str, Any]]:
    """The announcements, oldest first."""
    if await service.get(competition_id) is None:
        raise _not_found(competition_id)
    await _check_visible(service, ctx, principal, competition_id)
    return await service.announcements(competition_id)


class CallContribution(BaseModel):
    """One call behind a rep's number and what it contributed."""

    call_id: str
    direction: str | None
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    end_status: str | None
    talk_seconds: float
    outcome: str | None
    amount: Decimal | None
    contributed: dict[str, float] = Field(
        description="Counter -> credit of this call in the range (a rate's counters for a rate)."
    )
    counted_at: dict[str, datetime] = Field(description="Counter -> when the credit landed.")
    points: float | None = Field(
        default=None,
        description="With `competition_id`: what the call added to the score (null when the "
        "score has a rate or average, which no single call adds to).",
    )


class RepCallsOut(BaseModel):
    """The calls that produced a rep's number over [from, to)."""

    rep_id: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    counters: list[str]
    totals: dict[str, float] = Field(description="Sum of `contributed` over the calls listed.")
    calls: list[CallContribution]
    truncated: bool


def _counters(kpi: str | None, competition: Competition | None) -> list[str]:
    names = [kpi] if kpi else []
    if competition is not None:
        names += [t.kpi for t in competition.score]
    if not names:
        return list(ADDITIVE)
    return list(dict.fromkeys(c for n in names for c in COMPONENTS.get(n, (n,))))


def _weights(competition: Competition | None) -> dict[str, float] | None:
    if competition is None or any(t.kpi in COMPONENTS for t in competition.score):
        return None
    weights: dict[str, float] = {}
    for term in competition.score:
        weights[term.kpi] = weights.get(term.kpi, 0.0) + term.weight
    return weights


@router.get(
    "/reps/{rep_id}/calls",
    response_model=RepCallsOut,
    response_model_by_alias=True,
    summary="The calls behind a rep's number",
    description="Each call whose facts for `kpi` (or a competition's score) land in "
    "[`from`, `to`): times, direction, talk seconds, outcome, amount and what it contributed, "
    "so any figure can be traced to calls. With `competition_id` and no range, the range is the "
    "competition's running period. Call records hold no phone numbers, so none are shown. A "
    "`rep` key reads its own rep's calls only, a key scoped to a team its team's reps' only.",
    responses=problems(403, 404),
)
async def rep_calls(
    request: Request,
    ctx: ContextDep,
    principal: RepDep,
    rep_id: RepId,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    kpi: KpiName | None = None,
    competition_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> RepCallsOut:
    """The drill-down."""
    await check_rep(ctx, principal, rep_id)
    service = _service(request)
    competition = None
    if competition_id is not None:
        competition = await service.get(competition_id)
        if competition is None:
            raise _not_found(competition_id)
        await _check_visible(service, ctx, principal, competition_id)
        running = await service.standings(competition_id)
        if running is not None and running.period is not None:
            start = start or running.period.start
            end = end or running.period.end
    if start is None or end is None:
        raise Problem(422, "Invalid request", "Give `from` and `to` (or a running competition).")
    if not start < end or end - start > MAX_RANGE:
        raise Problem(422, "Invalid request", "`from` must be before `to`, at most 400 days.")
    counters = _counters(kpi, competition)
    async with service.sessions() as session:
        found = await repository.rep_calls(session, rep_id, start, end, counters, limit + 1)
    weights = _weights(competition)
    calls, totals = [], dict.fromkeys(counters, 0.0)
    for call, facts in found[:limit]:
        contributed = {k: float(v) for k, _, v in facts}
        for k, v in contributed.items():
            totals[k] = round(totals[k] + v, 4)
        points = None
        if weights is not None:
            points = round(sum(w * contributed.get(k, 0.0) for k, w in weights.items()), 6)
        calls.append(
            CallContribution(
                call_id=call.call_id,
                direction=call.direction,
                started_at=call.started_at,
                answered_at=call.answered_at,
                ended_at=call.ended_at,
                end_status=call.end_status,
                talk_seconds=call.talk_seconds,
                outcome=call.outcome,
                amount=call.amount,
                contributed=contributed,
                counted_at={k: at for k, at, _ in facts},
                points=points,
            )
        )
    return RepCallsOut.model_validate(
        {
            "rep_id": rep_id,
            "from": start,
            "to": end,
            "counters": counters,
            "totals": totals,
            "calls": calls,
            "truncated": len(found) > limit,
        }
    )
