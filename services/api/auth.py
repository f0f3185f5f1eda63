"""Bearer-key authentication (roles rep < viewer < supervisor < admin) as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.context import context
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
