"""How competitions plug into an app `services.api.app.install()` built: the service on
`app.state`, its background round in the lifespan, and the hook after call records are stored."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from schemas.calls import CallRecord
from services.api.alerts.channels import Channel, default_channels
from services.api.competitions.announce import Announcer
from services.api.competitions.service import CompetitionService
from services.api.context import ApiContext


def build(ctx: ApiContext) -> CompetitionService:
    """The competition service of an API context: announcements go to the teams' alert
    channels (the defaults for a competition naming no team)."""

    async def channels_of(team_ids: Sequence[str]) -> list[Channel]:
        if not team_ids:
            return default_channels(ctx.settings)
        found: dict[str, Channel] = {}
        for team_id in team_ids:
            for channel in (await ctx.alerts.channels(team_id)).channels:
                found.setdefault(channel.key, channel)
        return list(found.values())

    async def timezone_of(team_id: str) -> str | None:
        team = (await ctx.reports.roster.team(team_id)).team
        return team.timezone if team is not None else None

    announcer = Announcer(
        ctx.sessions, channels_of, timeout=ctx.settings.ALERT_DELIVERY_TIMEOUT_SECONDS
    )
    return CompetitionService(
        ctx.sessions,
        announcer,
        default_timezone=ctx.settings.TIMEZONE,
        timezone_of=timezone_of,
    )


def install(app: FastAPI, ctx: ApiContext) -> CompetitionService:
    """Create the service and hold it on `app.state` for the routes."""
    service = build(ctx)
    app.state.callpulse_competitions = service
    return service


def service_of(app: FastAPI) -> CompetitionService:
    """The competition service of an app."""
    service: CompetitionService = app.state.callpulse_competitions
    return service


def competition_tasks(app: FastAPI) -> AbstractAsyncContextManager[CompetitionService]:
    """The background round (periods, freezing, announcements) for the app's lifespan."""
    return service_of(app).running()


async def on_stored(app: FastAPI, records: list[CallRecord]) -> None:
    """Feed stored call records to the live standings."""
    await service_of(app).on_stored(records)
