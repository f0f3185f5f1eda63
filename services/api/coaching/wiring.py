"""How coaching plugs into an app `install()`ed with the API: its service and digest scheduler
on `app.state`, and the scheduler's background task for the app's lifespan."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from fastapi import FastAPI

from services.api.alerts.channels import Channel
from services.api.coaching.schedule import DigestScheduler, clock_of
from services.api.coaching.service import CoachingService
from services.api.context import ApiContext


@dataclass(frozen=True, slots=True)
class Coaching:
    """The coaching service and digest scheduler of one app."""

    service: CoachingService
    scheduler: DigestScheduler


def install(app: FastAPI, ctx: ApiContext) -> Coaching:
    """Build coaching around the API context and keep it on `app.state`."""
    service = CoachingService(ctx.sessions, ctx.reports.roster, ctx.settings.TIMEZONE)

    async def channels_of(team_id: str) -> list[Channel]:
        return (await ctx.alerts.channels(team_id)).channels

    scheduler = DigestScheduler(
        ctx.settings, ctx.sessions, service, channels_of, clock_of(ctx.settings)
    )
    coaching = Coaching(service, scheduler)
    app.state.callpulse_coaching = coaching
    return coaching


def of(app: FastAPI) -> Coaching:
    """The coaching of an app `install()`ed into."""
    coaching: Coaching = app.state.callpulse_coaching
    return coaching


def tasks(app: FastAPI) -> AbstractAsyncContextManager[DigestScheduler]:
    """`async with tasks(app):` runs the digest scheduler."""
    return of(app).scheduler.running()
