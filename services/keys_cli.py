"""`callpulse keys`: create, revoke and list API keys in the API's database.

The database is `CALLPULSE_DATABASE_URL` (the embedded default: SQLite under `./.callpulse/`),
or `--database-url`. A new key's secret is printed once, alone on stdout (so a script can capture
it); everything else goes to stderr. Only its SHA-256 is stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.config import ApiSettings
from services.api.db.engine import database
from services.api.keys import KeyInfo, NewKey, create_key, list_keys, revoke_key
from services.kit import logging as kit_logging

keys_app = typer.Typer(help="API keys: create, revoke, list.", no_args_is_help=True)

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


class RoleOption(StrEnum):
    """Roles, lowest first: viewer (read KPIs), supervisor (+ targets, alerts), admin (+ roster)."""

    viewer = "viewer"
    supervisor = "supervisor"
    admin = "admin"


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the API database [default: CALLPULSE_DATABASE_URL, else the "
        "embedded SQLite file in ./.callpulse/].",
        show_default=False,
    ),
]


@keys_app.callback()
def _logging() -> None:
    # Logs on stderr and only warnings: stdout carries nothing but a new key's secret.
    kit_logging.configure(level="WARNING")


def _url(database_url: str | None) -> str:
    # Through ApiSettings so `postgresql://` gets the async driver, as in the services.
    if database_url is None:
        return ApiSettings().DATABASE_URL
    return ApiSettings(DATABASE_URL=database_url).DATABASE_URL


def _run(database_url: str | None, action: Callable[[Sessions], Awaitable[T]]) -> T:
    async def main() -> T:
        async with database(_url(database_url)) as sessions:
            return await action(sessions)

    return asyncio.run(main())


def _row(key: KeyInfo) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@keys_app.command()
def create(
    name: Annotated[str, typer.Option(help="Who or what uses the key, e.g. `tv-floor-2`.")],
    role: Annotated[RoleOption, typer.Option(help="What the key may do.")] = RoleOption.viewer,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key and print its secret, the only time it is shown."""
    if not name.strip() or len(name) > 200:
        raise typer.BadParameter("give 1 to 200 characters", param_hint="--name")

    async def action(sessions: Sessions) -> NewKey:
        return await create_key(sessions, name.strip(), role.value)

    new = _run(database_url, action)
    typer.echo(
        f"Created key {new.info.id} {new.info.name!r} ({new.info.role}). "
        "This is the only time it is shown:",
        err=True,
    )
    typer.echo(new.key)
    typer.echo(
        "Send it as `Authorization: Bearer <key>`; for a wallboard TV open /?key=<key> once.",
        err=True,
    )


@keys_app.command()
def revoke(
    key_id: Annotated[int, typer.Argument(metavar="ID", help="The key's id (see `keys list`).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key; running servers stop accepting it within CALLPULSE_KEY_CACHE_SECONDS."""

    async def action(sessions: Sessions) -> bool:
        return await revoke_key(sessions, key_id)

    if not _run(database_url, action):
        typer.echo(f"No active key has id {key_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked key {key_id}.", err=True)


@keys_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of a table.")] = (
        False
    ),
    database_url: DatabaseUrl = None,
) -> None:
    """List every key (never the secrets), oldest first."""
    rows = [_row(key) for key in _run(database_url, list_keys)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("No keys.", err=True)
        return
    table = [["ID", "NAME", "ROLE", "CREATED", "STATE"]]
    table += [
        [str(r["id"]), str(r["name"]), str(r["role"]), str(r["created_at"]), _revoked(r)]
        for r in rows
    ]
    widths = [max(len(line[col]) for line in table) for col in range(len(table[0]))]
    for line in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def _revoked(row: dict[str, object]) -> str:
    return f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
