"""KPI reads: a rep, a team (the wallboard payload) and leaderboards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from schemas.kpis import WindowName
from services.api.auth import ViewerDep, check_rep, check_team, scope_team
from services.api.context import ContextDep
from services.api.routes.schemas import (
    LAG_DESCRIPTION,
    LeaderboardOut,
    Metric,
    RepId,
    RepKpisOut,
    TeamId,
    TeamKpisOut,
    problems,
)

router = APIRouter(prefix="/v1", tags=["kpis"], responses=problems(401, 422))

WindowQuery = Annotated[
    WindowName,
    Query(
        description="`today`, `week` (ISO), `month`: calendar periods in the team's time zone; "
        "`hour`: the current local hour; `15m`, `60m`: rolling, ending now."
    ),
]


class LeaderboardQuery(BaseModel):
    """Leaderboard parameters; every `min_*` is a quality floor on that KPI."""

    metric: Metric = "conversions"
    window: WindowName = "today"
    team_id: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=5000)
    min_dials: float | None = None
    min_connects: float | None = None
    min_connect_rate: float | None = None
    min_talk_seconds: float | None = None
    min_avg_talk_seconds: float | None = Field(
        default=None, description="E.g. 120: nobody wins by rushing calls."
    )
    min_conversations: float | None = None
    min_conversion_rate: float | None = None
    min_csat_avg: float | None = None
    min_csat_responses: float | None = None

    def floors(self) -> dict[str, float]:
        """The floors set, by KPI name."""
        return {
            name.removeprefix("min_"): value
            for name, value in self.model_dump().items()
            if name.startswith("min_") and value is not None
        }


@router.get(
    "/reps/{rep_id}/kpis",
    response_model=RepKpisOut,
    responses=problems(403, 404),
    summary="A rep's KPIs over one window",
    description="Served from memory. A rep the roster knows but with no activity gets zero "
    "counts and null ratios; an unknown rep is a 404. `lag_seconds`: " + LAG_DESCRIPTION,
)
async def rep_kpis(
    rep_id: RepId, ctx: ContextDep, principal: ViewerDep, window: WindowQuery = "today"
) -> RepKpisOut:
    """A rep's KPIs (a team key: its team's reps only)."""
    await check_rep(ctx, principal, rep_id)
    return await ctx.kpis.rep(rep_id, window)


@router.get(
    "/teams/{team_id}/kpis",
    response_model=TeamKpisOut,
    responses=problems(403, 404),
    summary="Team totals and one row per rep (the wallboard payload)",
    description="Totals add the reps' additive counts and recompute the ratios. Reps on the "
    "roster without activity appear with zero counts. The payload is shared by concurrent "
    "readers for up to 250 ms (the aggregator's own update interval).",
)
async def team_kpis(
    team_id: TeamId,
    ctx: ContextDep,
    principal: ViewerDep,
    window: WindowQuery = "today",
    include_hourly: Annotated[
        bool,
        Query(description="Also each rep's hourly connect profile (70 % of the payload)."),
    ] = False,
) -> Response:
    """A team's KPIs (a team key: its own team only)."""
    check_team(principal, team_id)
    body = await ctx.kpis.team_json(team_id, window, hourly=include_hourly)
    return Response(body, media_type="application/json")


@router.get(
    "/leaderboard",
    response_model=LeaderboardOut,
    responses=problems(403),
    summary="Reps ranked by one KPI",
    description="Highest first; equal values share a rank (1, 2, 2, 4). Reps whose metric is "
    "null (no denominator) or below any `min_*` quality floor are not ranked. A key scoped to "
    "a team ranks that team's reps only.",
)
async def leaderboard(
    ctx: ContextDep, principal: ViewerDep, query: Annotated[LeaderboardQuery, Query()]
) -> LeaderboardOut:
    """A leaderboard."""
    team_id = scope_team(principal, query.team_id)
    return ctx.kpis.leaderboard(query.metric, query.window, team_id, query.floors(), query.limit)
