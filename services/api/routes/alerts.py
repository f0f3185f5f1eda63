"""Alerts: history with delivery state, acknowledgement, and each team's notification channels."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.api.alerts.channels import redacted_url
from services.api.alerts.service import StoredAlert, TeamChannels
from services.api.auth import AdminDep, SupervisorDep, ViewerDep, check_team, scope_team
from services.api.context import ContextDep
from services.api.db import repository
from services.api.db.models import utcnow
from services.api.routes.schemas import (
    AlertId,
    AlertOut,
    AlertsOut,
    ChannelOut,
    ChannelsIn,
    ChannelsOut,
    DeliveryOut,
    TeamId,
    Text,
    problems,
)

router = APIRouter(prefix="/v1", tags=["alerts"], responses=problems(401, 422))


class AlertsQuery(BaseModel):
    """Filters of the alert list."""

    state: Literal["firing", "resolved"] | None = Field(
        default=None, description="Only alerts in this state; every state when omitted."
    )
    team_id: Text | None = None
    rep_id: Text | None = None
    limit: int = Field(default=100, ge=1, le=1000)


def alert_out(stored: StoredAlert) -> AlertOut:
    """The response body of one stored alert."""
    return AlertOut(
        **stored.alert.model_dump(),
        acked_at=stored.acked_at,
        acked_by=stored.acked_by,
        updated_at=stored.updated_at,
        deliveries=[DeliveryOut.model_validate(d, from_attributes=True) for d in stored.deliveries],
    )


def channels_out(team: TeamChannels) -> ChannelsOut:
    """A team's channels without secrets."""
    return ChannelsOut(
        team_id=team.team_id,
        configured=team.configured,
        channels=[
            ChannelOut(
                key=c.key, type=c.type, url=redacted_url(c.url), has_secret=c.secret is not None
            )
            for c in team.channels
        ],
    )


@router.get(
    "/alerts",
    response_model=AlertsOut,
    summary="Alerts, newest first",
    description="From the alert history: each alert as of its latest transition (an alert "
    "goes firing → resolved, never back), with its acknowledgement and, per channel and "
    "transition, its delivery (pending, sent or failed). A key scoped to a team lists that "
    "team's alerts only.",
    responses=problems(403),
)
async def list_alerts(
    ctx: ContextDep, principal: ViewerDep, query: Annotated[AlertsQuery, Query()]
) -> AlertsOut:
    """List alerts."""
    team_id = scope_team(principal, query.team_id)
    found = await ctx.alerts.find(
        state=query.state, team_id=team_id, rep_id=query.rep_id, limit=query.limit
    )
    return AlertsOut(alerts=[alert_out(a) for a in found], generated_at=utcnow())


@router.post(
    "/alerts/{alert_id:path}/ack",
    response_model=AlertOut,
    responses=problems(403, 404),
    summary="Acknowledge an alert (supervisor)",
    description="Idempotent: acknowledging again keeps the first acknowledgement "
    "(`acked_at`, `acked_by` = the API key's name). A key scoped to a team acknowledges that "
    "team's alerts only.",
)
async def ack_alert(alert_id: AlertId, ctx: ContextDep, principal: SupervisorDep) -> AlertOut:
    """Acknowledge an alert."""
    if principal.team_id is not None:
        async with ctx.sessions() as session:
            row = await repository.get_alert(session, alert_id)
        if row is not None:  # an unknown id is the service's 404
            check_team(principal, repository.alert_of(row).team_id or "")
    return alert_out(await ctx.alerts.ack(alert_id, principal.name))


@router.get(
    "/teams/{team_id}/channels",
    response_model=ChannelsOut,
    responses=problems(403),
    summary="A team's alert notification channels (admin)",
    description="Secrets are never returned, and URLs (chat-robot URLs carry tokens) show only "
    "scheme, host and port. A team without channels of its own gets the service defaults "
    "(CALLPULSE_ALERTMANAGER_URL, CALLPULSE_ALERT_WEBHOOK_URL), shown with `configured` false.",
)
async def get_channels(team_id: TeamId, ctx: ContextDep, _: AdminDep) -> ChannelsOut:
    """A team's channels."""
    return channels_out(await ctx.alerts.channels(team_id))


@router.put(
    "/teams/{team_id}/channels",
    response_model=ChannelsOut,
    responses=problems(403),
    summary="Replace a team's alert notification channels (admin)",
    description="Types: `webhook` (Standard Webhooks, Alert JSON body; `secret` `whsec_…` "
    "required), `slack` (incoming webhook), `wecom` (group robot), `dingtalk` (custom robot; "
    "`secret` to sign), `feishu` (custom bot; `secret` to sign), `alertmanager` (base URL; "
    "posts to `/api/v2/alerts`). Each new transition of the team's alerts is delivered once "
    "to each channel; `[]` silences the team. Applies to transitions stored from now on.",
)
async def put_channels(
    team_id: TeamId, body: ChannelsIn, ctx: ContextDep, _: AdminDep
) -> ChannelsOut:
    """Store a team's channels."""
    return channels_out(await ctx.alerts.put_channels(team_id, body.channels))


@router.delete(
    "/teams/{team_id}/channels",
    response_model=ChannelsOut,
    responses=problems(403),
    summary="Forget a team's channels: back to the service defaults (admin)",
)
async def delete_channels(team_id: TeamId, ctx: ContextDep, _: AdminDep) -> ChannelsOut:
    """Forget a team's channels."""
    return channels_out(await ctx.alerts.delete_channels(team_id))
