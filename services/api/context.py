"""What the API routes depend on, built once by `install()` and held on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.alerts.service import AlertService
from services.api.config import ApiSettings
from services.api.keys import Authenticator
from services.api.kpis import KpiService
from services.api.metrics import AlertMetrics
from services.api.publisher import RosterPublisher
from services.api.readmodel import ReadModel
from services.api.reports import ReportService
from services.api.roster import RosterCache, RosterService


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The read model, database sessions, services and key verification of one app."""

    settings: ApiSettings
    readmodel: ReadModel
    sessions: async_sessionmaker[AsyncSession]
    authenticator: Authenticator
    kpis: KpiService
    roster: RosterService
    reports: ReportService
    alerts: AlertService

    @classmethod
    def build(
        cls,
        settings: ApiSettings,
        readmodel: ReadModel,
        sessions: async_sessionmaker[AsyncSession],
        roster_publisher: RosterPublisher,
        *,
        alert_metrics: AlertMetrics | None = None,
    ) -> ApiContext:
        """Wire the services around the given adapters."""
        cache = RosterCache(sessions)
        return cls(
            settings=settings,
            readmodel=readmodel,
            sessions=sessions,
            authenticator=Authenticator(sessions, ttl=settings.KEY_CACHE_SECONDS),
            kpis=KpiService(readmodel, cache, settings.TIMEZONE),
            roster=RosterService(sessions, roster_publisher, cache),
            reports=ReportService(sessions, cache, settings.TIMEZONE),
            alerts=AlertService(settings, sessions, readmodel, metrics=alert_metrics),
        )


def context(request: Request) -> ApiContext:
    """The API context of the app serving this request."""
    ctx: ApiContext = request.app.state.callpulse_api
    return ctx


async def _context_dependency(request: Request) -> ApiContext:
    # A coroutine, so FastAPI calls it on the event loop instead of in its thread pool.
    return context(request)


ContextDep = Annotated[ApiContext, Depends(_context_dependency)]
