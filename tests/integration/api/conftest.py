"""Fixtures of the API integration tests: the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.db.engine import create_engine, migrate


@dataclass
class Api:
    """A started API: its HTTP client (sending the admin key), app and settings."""

    client: httpx.AsyncClient
    app: FastAPI
    settings: ApiSettings


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated test database."""
    await migrate(postgres_url)
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_session(pg_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction that is rolled back after the test."""
    async with pg_engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def unique() -> str:
    """A suffix that keeps this test's ids apart from other tests' in the shared database."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def api_factory(
    postgres_url: str, topic_factory: Callable[[str], str], unique: str
) -> AsyncIterator[ApiFactory]:
    """Start the API on PostgreSQL (Kafka with `KAFKA_BOOTSTRAP=`), with unique topics; each
    call starts another instance (a replica) on the same database and topics."""
    stack: list[Any] = []

    async def start(**overrides: Any) -> Api:
        defaults: dict[str, Any] = {
            "DATABASE_URL": postgres_url,
            "BOOTSTRAP_ADMIN_KEY": SecretStr(f"cp_admin_{unique}"),
            "KPIS_TOPIC": topic_factory("kpis"),
            "CALLS_TOPIC": topic_factory("calls"),
            "ROSTER_TOPIC": topic_factory("roster"),
            "ALERTS_TOPIC": topic_factory("alerts"),
            "CONSUMER_GROUP_PREFIX": f"test-{unique}",
            "PARTITIONS": 2,
        }
        settings = ApiSettings(**{**defaults, **overrides})
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api")
        stack.append(client)
        client.headers["Authorization"] = f"Bearer cp_admin_{unique}"
        return Api(client, app, settings)

    yield start
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


async def eventually(check: Callable[[], Awaitable[Any]], *, deadline: float = 60.0) -> Any:
    """Poll `check` until it returns a truthy value (a deadline, not a timing assertion)."""
    async with asyncio.timeout(deadline):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.2)
