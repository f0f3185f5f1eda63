"""The roster: teams, reps, targets and alert rules. Reads for every key; writes are stored,
then published to the KPI computation."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from schemas.roster import AlertRules, Rep, Targets, Team
from services.api.auth import (
    AdminDep,
    SupervisorDep,
    ViewerDep,
    check_rep,
    check_team,
    scope_team,
)
from services.api.context import ContextDep
from services.api.db import repository
from services.api.routes.schemas import (
    AlertRulesIn,
    RepId,
    RepIn,
    RepsOut,
    TargetsIn,
    TeamFilter,
    TeamId,
    TeamIn,
    TeamsOut,
    problems,
)
from services.kit.problems import Problem

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
    team_id: TeamId, body: TargetsIn, ctx: ContextDep, principal: SupervisorDep
) -> Targets:
    """Store and publish a team's targets."""
    check_team(principal, team_id)
    targets = Targets(subject="team", subject_id=team_id, targets=body.targets)
    return await ctx.roster.put_targets(targets)


@router.put(
    "/reps/{rep_id}/targets",
    response_model=Targets,
    summary="Replace a rep's targets (supervisor)",
    description="Override the team's targets for the same KPI and window." + PUBLISHED,
)
async def put_rep_targets(
    rep_id: RepId, body: TargetsIn, ctx: ContextDep, principal: SupervisorDep
) -> Targets:
    """Store and publish a rep's targets."""
    await check_rep(ctx, principal, rep_id)
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
    team_id: TeamId, body: AlertRulesIn, ctx: ContextDep, principal: SupervisorDep
) -> AlertRules:
    """Store and publish a team's alert rules."""
    check_team(principal, team_id)
    rules = AlertRules(subject="team", subject_id=team_id, rules=body.rules)
    return await ctx.roster.put_alert_rules(rules)


@router.put(
    "/reps/{rep_id}/alert-rules",
    response_model=AlertRules,
    summary="Replace a rep's alert rules (supervisor)",
    description="Override the team's rule of the same `rule_id`." + RULES + PUBLISHED,
)
async def put_rep_alert_rules(
    rep_id: RepId, body: AlertRulesIn, ctx: ContextDep, principal: SupervisorDep
) -> AlertRules:
    """Store and publish a rep's alert rules."""
    await check_rep(ctx, principal, rep_id)
    rules = AlertRules(subject="rep", subject_id=rep_id, rules=body.rules)
    return await ctx.roster.put_alert_rules(rules)


# Reads, for viewer keys and above: the wallboard needs the teams and names, and targets and
# alert rules explain its progress bars and alerts (a `rep` key reads its scorecard only).
# Channels (they hold secrets) are read in routes/alerts.py, by admins, without the secrets.

Subject = Literal["team", "rep"]


def _not_found(subject: Subject, subject_id: str) -> Problem:
    path = "/v1/teams/{id}" if subject == "team" else "/v1/reps/{id}"
    return Problem(
        404, f"Unknown {subject}", f"No {subject} {subject_id!r}; create it with PUT {path}."
    )


@router.get(
    "/teams",
    response_model=TeamsOut,
    summary="Every team",
    description="Teams by id, with name, time zone and shift; a key scoped to a team gets "
    "that team only.",
)
async def get_teams(ctx: ContextDep, principal: ViewerDep) -> TeamsOut:
    """Every team."""
    async with ctx.sessions() as session:
        teams = await repository.list_teams(session)
    if principal.team_id is not None:
        teams = [t for t in teams if t.team_id == principal.team_id]
    return TeamsOut(teams=teams)


@router.get(
    "/teams/{team_id}",
    response_model=Team,
    responses=problems(404),
    summary="One team",
)
async def get_team(team_id: TeamId, ctx: ContextDep, principal: ViewerDep) -> Team:
    """One team, or 404."""
    check_team(principal, team_id)
    async with ctx.sessions() as session:
        team = await repository.get_team(session, team_id)
    if team is None:
        raise _not_found("team", team_id)
    return team


@router.get(
    "/reps",
    response_model=RepsOut,
    summary="Every rep, or one team's",
    description="Reps by id, with name, team and provider agent ids; `team_id` keeps one "
    "team's reps (as the roster assigns them); a key scoped to a team gets its team's only.",
)
async def get_reps(ctx: ContextDep, principal: ViewerDep, team_id: TeamFilter = None) -> RepsOut:
    """Every rep, or one team's."""
    team_id = scope_team(principal, team_id)
    async with ctx.sessions() as session:
        if team_id is None:
            return RepsOut(reps=await repository.list_reps(session))
        return RepsOut(reps=await repository.reps_of_team(session, team_id))


@router.get(
    "/reps/{rep_id}",
    response_model=Rep,
    responses=problems(404),
    summary="One rep",
)
async def get_rep(rep_id: RepId, ctx: ContextDep, principal: ViewerDep) -> Rep:
    """One rep, or 404."""
    await check_rep(ctx, principal, rep_id)
    async with ctx.sessions() as session:
        rep = await repository.get_rep(session, rep_id)
    if rep is None:
        raise _not_found("rep", rep_id)
    return rep


async def _targets(ctx: ContextDep, subject: Subject, subject_id: str) -> Targets:
    async with ctx.sessions() as session:
        found = await repository.get_targets(session, subject, subject_id)
    return found or Targets(subject=subject, subject_id=subject_id, targets=[])


async def _rules(ctx: ContextDep, subject: Subject, subject_id: str) -> AlertRules:
    async with ctx.sessions() as session:
        found = await repository.get_alert_rules(session, subject, subject_id)
    return found or AlertRules(subject=subject, subject_id=subject_id, rules=[])


@router.get(
    "/teams/{team_id}/targets",
    response_model=Targets,
    summary="A team's targets",
    description="As last set with PUT (an empty list when never set).",
)
async def get_team_targets(team_id: TeamId, ctx: ContextDep, principal: ViewerDep) -> Targets:
    """A team's targets."""
    check_team(principal, team_id)
    return await _targets(ctx, "team", team_id)


@router.get(
    "/reps/{rep_id}/targets",
    response_model=Targets,
    summary="A rep's own targets",
    description="The rep's overrides as last set with PUT (an empty list when never set); "
    "the targets in force, team defaults included, come with the rep's KPIs.",
)
async def get_rep_targets(rep_id: RepId, ctx: ContextDep, principal: ViewerDep) -> Targets:
    """A rep's own targets."""
    await check_rep(ctx, principal, rep_id)
    return await _targets(ctx, "rep", rep_id)


@router.get(
    "/teams/{team_id}/alert-rules",
    response_model=AlertRules,
    summary="A team's alert rules",
    description="As last set with PUT (an empty list when never set).",
)
async def get_team_alert_rules(
    team_id: TeamId, ctx: ContextDep, principal: ViewerDep
) -> AlertRules:
    """A team's alert rules."""
    check_team(principal, team_id)
    return await _rules(ctx, "team", team_id)


@router.get(
    "/reps/{rep_id}/alert-rules",
    response_model=AlertRules,
    summary="A rep's own alert rules",
    description="The rep's overrides of team rules (same `rule_id`), as last set with PUT.",
)
async def get_rep_alert_rules(rep_id: RepId, ctx: ContextDep, principal: ViewerDep) -> AlertRules:
    """A rep's own alert rules."""
    await check_rep(ctx, principal, rep_id)
    return await _rules(ctx, "rep", rep_id)
