"""Reports from the call history: a day per rep, and when customers pick up."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from services.api.auth import ViewerDep, scope_team
from services.api.context import ContextDep
from services.api.routes.schemas import DailyReportOut, HourlyReportOut, TeamFilter, problems
from services.kit.problems import Problem

FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(9999, 12, 30)  # room for time-zone offsets

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=problems(401, 403, 422))


@router.get(
    "/daily",
    response_model=DailyReportOut,
    summary="KPIs per rep for one local day",
    description="From the stored call history, in the team's time zone; each fact counts on "
    "the day of its own time (a dial when started, a conversion when the outcome came).",
)
async def daily(
    ctx: ContextDep,
    principal: ViewerDep,
    team_id: TeamFilter = None,
    day: Annotated[
        date | None, Query(alias="date", description="Local date; today if omitted.")
    ] = None,
) -> DailyReportOut:
    """A daily report."""
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise Problem(422, "Invalid request", f"date must be within {FIRST_DAY}..{LAST_DAY}.")
    return await ctx.reports.daily(day, scope_team(principal, team_id))


@router.get(
    "/hourly",
    response_model=HourlyReportOut,
    summary="Connect rate by local hour of day",
    description="Outbound dials and outbound connects over the last `days` local days, by the "
    "local hour each counts in (a dial when the call started, a connect when it was answered), "
    "as the live hourly profile counts them: when do customers pick up?",
)
async def hourly(
    ctx: ContextDep,
    principal: ViewerDep,
    team_id: TeamFilter = None,
    days: Annotated[int, Query(ge=1, le=400)] = 7,
) -> HourlyReportOut:
    """An hourly profile."""
    return await ctx.reports.hourly(scope_team(principal, team_id), days)
