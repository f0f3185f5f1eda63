"""Bearer-key authentication (roles rep < viewer < supervisor < admin) as FastAPI dependencies,
and the scopes a key may carry: a `rep` key reads its own rep, a team key (a `viewer` or
`supervisor` key with `team_id`) reads and acts on its own team only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.context import ApiContext, context
from services.api.keys import RANK, Principal, Role
from services.kit.problems import Problem

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cp_…`.")


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits keys of `role` or a higher one."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("Send an API key: `Authorization: Bearer <key>`.")
        principal = await context(request).authenticator.authenticate(credentials.credentials)
        if principal is None:
            raise _unauthorized("The API key is unknown or revoked.")
        if RANK[principal.role] < RANK[role]:
            raise Problem(403, "Forbidden", f"This needs the {role} role or higher.")
        return principal

    return dependency


RepDep = Annotated[Principal, Depends(require("rep"))]
"""Any key; a `rep` key is restricted to its own rep (`check_own_rep`)."""
ViewerDep = Annotated[Principal, Depends(require("viewer"))]
SupervisorDep = Annotated[Principal, Depends(require("supervisor"))]
AdminDep = Annotated[Principal, Depends(require("admin"))]


def check_own_rep(principal: Principal, rep_id: str) -> None:
    """A `rep` key may read its own rep only; every other role reads any rep."""
    if principal.role == "rep" and principal.rep_id != rep_id:
        raise Problem(403, "Forbidden", "This key may read only its own rep's scorecard.")


def _other_team(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail)


def check_team(principal: Principal, team_id: str) -> None:
    """A team key may read or change its own team only; other keys any team."""
    if principal.team_id is not None and principal.team_id != team_id:
        raise _other_team(f"This key may read only team {principal.team_id!r}.")


def scope_team(principal: Principal, team_id: str | None) -> str | None:
    """The team filter of a route that lists many teams' data: as given for a key without a
    team; a team key's own team (another team asked for is a 403)."""
    if principal.team_id is None:
        return team_id
    check_team(principal, team_id or principal.team_id)
    return principal.team_id


async def team_of_rep(ctx: ApiContext, rep_id: str) -> str | None:
    """The rep's team: the roster's, else that of its latest KPI snapshot; None if unknown."""
    found = await ctx.roster.cache.rep(rep_id)
    if found is not None and found.rep.team_id is not None:
        return found.rep.team_id
    snapshot = ctx.readmodel.snapshot(rep_id)
    return None if snapshot is None else snapshot.team_id


async def check_rep(ctx: ApiContext, principal: Principal, rep_id: str) -> None:
    """A `rep` key reads its own rep; a team key the reps of its team; other keys any rep."""
    check_own_rep(principal, rep_id)
    if principal.team_id is None:
        return
    if await team_of_rep(ctx, rep_id) != principal.team_id:
        raise _other_team(f"This key may read only the reps of team {principal.team_id!r}.")
