"""Bearer keys and roles, against the embedded (SQLite) database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.db.engine import create_engine, create_sessionmaker, migrate
from services.api.db.models import ApiKey
from services.api.keys import create_key, ensure_bootstrap_key, hash_key, list_keys, revoke_key

ADMIN = "cp_test_admin"
TARGETS = {"targets": [{"kpi": "dials", "window": "today", "value": 50}]}


@pytest.fixture
def settings(tmp_path: Path) -> ApiSettings:
    return ApiSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db",
        BOOTSTRAP_ADMIN_KEY=SecretStr(ADMIN),
        KEY_CACHE_SECONDS=0,
    )


@pytest.fixture
async def client(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


async def key_for(settings: ApiSettings, role: str) -> str:
    engine = create_engine(settings.DATABASE_URL)
    try:
        new = await create_key(create_sessionmaker(engine), f"{role}-key", role)  # type: ignore[arg-type]
    finally:
        await engine.dispose()
    return new.key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer"])
async def test_missing_or_wrong_key_is_401_with_challenge(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.get("/v1/leaderboard", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


async def test_roles(client: httpx.AsyncClient, settings: ApiSettings) -> None:
    viewer = await key_for(settings, "viewer")
    supervisor = await key_for(settings, "supervisor")
    assert (await client.get("/v1/leaderboard", headers=bearer(viewer))).status_code == 200

    denied = await client.put("/v1/teams/t1/targets", json=TARGETS, headers=bearer(viewer))
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"

    allowed = await client.put("/v1/teams/t1/targets", json=TARGETS, headers=bearer(supervisor))
    assert allowed.status_code == 200
    team = {"name": "Team 1", "timezone": "Europe/Paris"}
    assert (
        await client.put("/v1/teams/t1", json=team, headers=bearer(supervisor))
    ).status_code == 403
    assert (await client.put("/v1/teams/t1", json=team, headers=bearer(ADMIN))).status_code == 200


async def test_a_revoked_key_is_refused(client: httpx.AsyncClient, settings: ApiSettings) -> None:
    engine = create_engine(settings.DATABASE_URL)
    sessions = create_sessionmaker(engine)
    try:
        new = await create_key(sessions, "temp", "viewer")
        assert (await client.get("/v1/leaderboard", headers=bearer(new.key))).status_code == 200
        assert await revoke_key(sessions, new.info.id)
        assert not await revoke_key(sessions, new.info.id)
        assert (await client.get("/v1/leaderboard", headers=bearer(new.key))).status_code == 401
    finally:
        await engine.dispose()


async def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    await migrate(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        assert await ensure_bootstrap_key(sessions, SecretStr(ADMIN)) is None
        assert await ensure_bootstrap_key(sessions, SecretStr(ADMIN)) is None
        async with sessions() as session:
            rows = (await session.scalars(select(ApiKey))).all()
        assert [(r.role, r.key_hash) for r in rows] == [("admin", hash_key(ADMIN))]
    finally:
        await engine.dispose()


async def test_first_start_without_keys_creates_one_admin_key(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/first.db"
    await migrate(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        created = await ensure_bootstrap_key(sessions, None)
        assert created is not None
        assert created.startswith("cp_")
        assert await ensure_bootstrap_key(sessions, None) is None
        keys = await list_keys(sessions)
        assert [(k.name, k.role) for k in keys] == [("initial-admin", "admin")]
    finally:
        await engine.dispose()


async def test_unknown_role_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/roles.db"
    await migrate(url)
    engine = create_engine(url)
    try:
        with pytest.raises(ValueError, match="role must be"):
            await create_key(create_sessionmaker(engine), "x", "owner")  # type: ignore[arg-type]
    finally:
        await engine.dispose()
