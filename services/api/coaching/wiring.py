"""How coaching plugs into an app `install()`ed with the API: its service and digest scheduler
on `app.state`, and the scheduler's background task for the app's lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from fastapi import FastAPI

from schemas.calls import CallRecord
from services.api.alerts.channels import Channel
from services.api.coaching import csat
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
    service = CoachingService(
        ctx.sessions,
        ctx.reports.roster,
        ctx.settings.TIMEZONE,
        cache_seconds=ctx.settings.COACHING_CACHE_SECONDS,
    )

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


async def on_stored(app: FastAPI, records: list[CallRecord]) -> None:
    """After call records are stored: raise the CSAT follow-ups among them."""
    ctx: ApiContext = app.state.callpulse_api
    alerts = csat.follow_ups(records, ctx.settings.CSAT_ALERT_THRESHOLD)
    if alerts:
        await ctx.alerts.record(alerts)


Store = Callable[[list[CallRecord]], Awaitable[None]]


def after_stored(app: FastAPI, first: Store | None = None) -> Store:
    """A hook for the calls consumer: `first` (another hook), then `on_stored`."""

    async def after(records: list[CallRecord]) -> None:
        if first is not None:
            await first(records)
        await on_stored(app, records)

    return after
