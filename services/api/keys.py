"""API keys: random `cp_…` secrets shown once, stored as SHA-256, with a role (and optionally
the one team a `viewer` or `supervisor` key is scoped to)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

import structlog
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.db import repository
from services.api.db.models import ApiKey

log = structlog.get_logger(__name__)

Role = Literal["rep", "viewer", "supervisor", "admin"]
"""Lowest first. A `rep` key reads only its own rep's scorecard (`Principal.rep_id`)."""
ROLES: tuple[Role, ...] = get_args(Role)
RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
KEY_PREFIX = "cp_"
TEAM_ROLES: tuple[Role, ...] = ("viewer", "supervisor")
"""The roles a key scoped to one team may have (an admin key is never team-bound)."""

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key without its secret."""

    id: int
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    team_id: str | None = None
    rep_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: `key` is the secret, shown this once and never stored."""

    info: KeyInfo
    key: str


def generate_key() -> str:
    """A new random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256, hex (keys are random, so no salt or stretching)."""
    return hashlib.sha256(key.encode()).hexdigest()


def info(row: ApiKey) -> KeyInfo:
    """A key row without its hash."""
    role: Role = row.role if row.role in RANK else "viewer"  # type: ignore[assignment]
    return KeyInfo(row.id, row.name, role, row.created_at, row.revoked_at, row.team_id, row.rep_id)


async def create_key(
    sessions: Sessions,
    name: str,
    role: Role,
    key: str | None = None,
    *,
    rep_id: str | None = None,
    team_id: str | None = None,
) -> NewKey:
    """Create a key (random unless given) and return it with its secret, the only time it is.

    A `rep` key needs the `rep_id` it is restricted to; other roles take none. A `viewer` or
    `supervisor` key may be scoped to one `team_id`; admin and rep keys never are."""
    if role not in RANK:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if (role == "rep") != (rep_id is not None):
        raise ValueError("a rep key needs a rep_id, and only a rep key takes one")
    if team_id is not None and role not in TEAM_ROLES:
        raise ValueError(f"only a {' or '.join(TEAM_ROLES)} key can be scoped to a team")
    if team_id is not None and not team_id.strip():
        raise ValueError("a team_id must not be empty")
    secret = key or generate_key()
    async with sessions.begin() as session:
        row = await repository.add_key(session, name, role, hash_key(secret))
        row.rep_id = rep_id
        row.team_id = team_id
        created = info(row)
    log.info("api_key_created", key_id=created.id, name=name, role=role, team_id=team_id)
    return NewKey(created, secret)


async def revoke_key(sessions: Sessions, key_id: int) -> bool:
    """Revoke a key by id; False if no active key has it. Replicas notice within the cache TTL."""
    async with sessions.begin() as session:
        revoked = await repository.revoke_key(session, key_id)
    if revoked:
        log.info("api_key_revoked", key_id=key_id)
    return revoked


async def list_keys(sessions: Sessions) -> list[KeyInfo]:
    """Every key, oldest first, without secrets."""
    async with sessions() as session:
        return [info(row) for row in await repository.list_keys(session)]


async def ensure_bootstrap_key(sessions: Sessions, bootstrap: SecretStr | None) -> str | None:
    """Ensure the configured admin key exists; with none configured and no key at all, create one.

    Returns the secret of a key created here (to be shown once), else None. A configured key
    that was revoked stays revoked.
    """
    if bootstrap is not None:
        key_hash = hash_key(bootstrap.get_secret_value())
        async with sessions.begin() as session:
            existing = await repository.any_key_hash(session, key_hash)
            if existing is None:
                await repository.add_key(session, "bootstrap-admin", "admin", key_hash)
                log.info("bootstrap_admin_key_ensured")
            elif existing.revoked_at is not None:
                log.warning("bootstrap_admin_key_revoked", key_id=existing.id)
        return None
    async with sessions() as session:
        if await repository.list_keys(session):
            return None
    created = await create_key(sessions, "initial-admin", "admin")
    return created.key


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, name and role (and a `rep` key's rep, a team key's team)."""

    key_id: int
    name: str
    role: Role
    rep_id: str | None = None
    team_id: str | None = None
    """Set: the key reads and acts on this team only (`services.api.auth.Scope`)."""


@dataclass
class Authenticator:
    """Verifies keys against the database, trusting a verified key for `ttl` seconds.

    The cache keeps the database off the hot path of wallboard polling; a revoked key stops
    working within `ttl` on every replica. Unknown keys are not cached (new keys work at once).
    """

    sessions: Sessions
    ttl: float = 30.0
    max_entries: int = 10_000
    _cache: dict[str, tuple[float, Principal]] = field(default_factory=dict)

    async def authenticate(self, key: str) -> Principal | None:
        """The principal of an active key, or None."""
        key_hash = hash_key(key)
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self.sessions() as session:
            row = await repository.key_by_hash(session, key_hash)
        if row is None:
            self._cache.pop(key_hash, None)
            return None
        key_info = info(row)
        principal = Principal(
            key_info.id, key_info.name, key_info.role, row.rep_id, key_info.team_id
        )
        if self.ttl > 0:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key_hash] = (time.monotonic() + self.ttl, principal)
        return principal
