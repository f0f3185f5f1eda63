"""Roster writes: teams, reps, targets and alert rules; stored, then published to the KPI
computation."""

from __future__ import annotations

from fastapi import APIRouter

from schemas.roster import AlertRules, Rep, Targets, Team
from services.api.auth import AdminDep, SupervisorDep
from services.api.context import ContextDep
from services.api.routes.schemas import (
    AlertRulesIn,
    RepId,
    RepIn,
    TargetsIn,
    TeamId,
    TeamIn,
    problems,
)

router = APIRouter(prefix="/v1", tags=["roster"], responses=problems(401, 403, 422, 503))

PUBLISHED = (
    " The change is stored, then published to the roster topic; if publishing fails the answer "
    "is 503 and repeating the request publishes it."
)


@router.put(
    "/teams/{team_id}",
    response_model=Team,
    summary="Create or replace a team (admin)",
    description="Name, time zone (its calendar windows) and shift." + PUBLISHED,
)
async def put_team(team_id: TeamId, body: TeamIn, ctx: ContextDep, _: AdminDep) -> Team:
    """Store and publish a team."""
    timezone = body.timezone or ctx.settings.TIMEZONE
    team = Team(team_id=team_id, name=body.name, timezone=timezone, shift=body.shift)
    return await ctx.roster.put_team(team)


@router.put(
    "/reps/{rep_id}",
    response_model=Rep,
    summary="Create or replace a rep (admin)",
    description="Name, team and provider agent ids." + PUBLISHED,
)
async def put_rep(rep_id: RepId, body: RepIn, ctx: ContextDep, _: AdminDep) -> Rep:
    """Store and publish a rep."""
    rep = Rep(rep_id=rep_id, name=body.name, team_id=body.team_id, external_ids=body.external_ids)
    return await ctx.roster.put_rep(rep)


@router.put(
    "/teams/{team_id}/targets",
    response_model=Targets,
    summary="Replace a team's targets (supervisor)",
    description="Defaults for the team's reps." + PUBLISHED,
)
async def put_team_targets(
    team_id: TeamId, body: TargetsIn, ctx: ContextDep, _: SupervisorDep
) -> Targets:
    """Store and publish a team's targets."""
    targets = Targets(subject="team", subject_id=team_id, targets=body.targets)
    return await ctx.roster.put_targets(targets)


@router.put(
    "/reps/{rep_id}/targets",
    response_model=Targets,
    summary="Replace a rep's targets (supervisor)",
    description="Override the team's targets for the same KPI and window." + PUBLISHED,
)
async def put_rep_targets(
    rep_id: RepId, body: TargetsIn, ctx: ContextDep, _: SupervisorDep
) -> Targets:
    """Store and publish a rep's targets."""
    targets = Targets(subject="rep", subject_id=rep_id, targets=body.targets)
    return await ctx.roster.put_targets(targets)


RULES = (
    " Kinds: `threshold` (`kpi` over `window` `below`/`above` `value`, once the window has "
    "`min_sample` calls), `pace` (behind the pro-rata share of the `today` target by more than "
    "`tolerance`), `idle` (no call activity for `idle_minutes` during the shift), `missed` "
    "(`today` target not met at shift end); `hysteresis` and `cooldown_minutes` damp them."
)


@router.put(
    "/teams/{team_id}/alert-rules",
    response_model=AlertRules,
    summary="Replace a team's alert rules (supervisor)",
    description="Defaults for the team's reps." + RULES + PUBLISHED,
)
async def put_team_alert_rules(
    team_id: TeamId, body: AlertRulesIn, ctx: ContextDep, _: SupervisorDep
) -> AlertRules:
    """Store and publish a team's alert rules."""
    rules = AlertRules(subject="team", subject_id=team_id, rules=body.rules)
    return await ctx.roster.put_alert_rules(rules)


@router.put(
    "/reps/{rep_id}/alert-rules",
    response_model=AlertRules,
    summary="Replace a rep's alert rules (supervisor)",
    description="Override the team's rule of the same `rule_id`." + RULES + PUBLISHED,
)
async def put_rep_alert_rules(
    rep_id: RepId, body: AlertRulesIn, ctx: ContextDep, _: SupervisorDep
) -> AlertRules:
    """Store and publish a rep's alert rules."""
    rules = AlertRules(subject="rep", subject_id=rep_id, rules=body.rules)
    return await ctx.roster.put_alert_rules(rules)
