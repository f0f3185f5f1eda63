"""`callpulse keys`: create, revoke and list API keys in the API's database.

The database is found as `callpulse run` finds it: `--database-url`, else
`CALLPULSE_DATABASE_URL`, else the SQLite file in the data folder (`--data-dir`,
`CALLPULSE_DATA_DIR`, default `./.callpulse`). A database that callpulse never set up (a missing
SQLite file, an empty PostgreSQL database) is refused, never created: a key in it would be one no
server knows. A new key's secret is printed once, alone on stdout (so a script can capture it);
everything else goes to stderr. Only its SHA-256 is stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from sqlalchemy import inspect, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.config import ApiSettings
from services.api.db.engine import create_engine, database
from services.api.keys import TEAM_ROLES, KeyInfo, NewKey, create_key, list_keys, revoke_key
from services.kit import logging as kit_logging
from services.standalone import datadir

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
        "SQLite file in --data-dir].",
        show_default=False,
    ),
]
DataDir = Annotated[
    Path,
    typer.Option(
        envvar=datadir.DATA_DIR_ENV,
        help="`callpulse run`'s data folder, whose database holds the keys.",
    ),
]
_ALEMBIC_TABLE = "alembic_version"


class Unusable(Exception):
    """The database cannot be used for keys; the message is the one line shown."""


@keys_app.callback()
def _logging() -> None:
    # Logs on stderr and only warnings: stdout carries nothing but a new key's secret.
    kit_logging.configure(level="WARNING")


def _url(database_url: str | None, data_dir: Path) -> str:
    # Through ApiSettings so `postgresql://` gets the async driver, as in the services.
    url = datadir.database_url(data_dir, database_url)
    if url.startswith("sqlite://"):  # the plain driver is not async: use the one the server uses
        url = "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    try:
        return ApiSettings(DATABASE_URL=url).DATABASE_URL
    except ValueError as exc:
        raise Unusable(f"{url!r} is not a database URL ({exc})") from None


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _check_exists(url: str) -> None:
    """Raise Unusable unless `url` parses and, for SQLite, names an existing file."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise Unusable(
            f"{url!r} is not a database URL; expected e.g. sqlite+aiosqlite:///.callpulse/"
            "callpulse.db or postgresql://user:password@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if not path or path == ":memory:" or not Path(path).is_file():
            raise Unusable(
                f"no callpulse database at {path or url!r}: start `callpulse run` once (it "
                "creates it), or point at the server's with --data-dir or --database-url"
            )


async def _check_set_up(url: str) -> None:
    """Raise Unusable unless `url` is a database callpulse has already set up."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    if _ALEMBIC_TABLE not in tables:
        raise Unusable(
            f"{_shown(url)} holds no callpulse tables: start the callpulse server on it once "
            "(it sets the database up), or point at the server's with --database-url"
        )


def _run(database_url: str | None, data_dir: Path, action: Callable[[Sessions], Awaitable[T]]) -> T:
    async def main(url: str) -> T:
        await _check_set_up(url)
        async with database(url) as sessions:
            return await action(sessions)

    try:
        url = _url(database_url, data_dir)
        _check_exists(url)
        return asyncio.run(main(url))
    except Unusable as exc:
        _fail(str(exc))
    except Exception as exc:  # a driver's error: connection refused, bad password, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        url = datadir.database_url(data_dir, database_url)
        _fail(f"cannot use the database {_shown(url)}: {first}")


def _fail(line: str) -> NoReturn:
    typer.echo(f"callpulse keys: {line}", err=True)
    raise typer.Exit(1)


def _row(key: KeyInfo) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "team_id": key.team_id,
        "rep_id": key.rep_id,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@keys_app.command()
def create(
    name: Annotated[str, typer.Option(help="Who or what uses the key, e.g. `tv-floor-2`.")],
    role: Annotated[RoleOption, typer.Option(help="What the key may do.")] = RoleOption.viewer,
    team: Annotated[
        str | None,
        typer.Option(
            help="Scope the key to this team id: it reads (a supervisor: acts on) that team "
            "only. Viewer and supervisor keys only; an admin key is never scoped.",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = Path(datadir.DEFAULT_DATA_DIR),
) -> None:
    """Create a key and print its secret, the only time it is shown."""
    if not name.strip() or len(name) > 200:
        raise typer.BadParameter("give 1 to 200 characters", param_hint="--name")
    if team is not None:
        if role.value not in TEAM_ROLES:
            raise typer.BadParameter(
                f"a {role.value} key is never scoped to a team; give --role viewer or supervisor",
                param_hint="--team",
            )
        team = team.strip()
        if not team or len(team) > 200 or not team.isprintable():
            raise typer.BadParameter("give a team id of 1 to 200 characters", param_hint="--team")

    async def action(sessions: Sessions) -> NewKey:
        return await create_key(sessions, name.strip(), role.value, team_id=team)

    new = _run(database_url, data_dir, action)
    scope = f", team {team!r} only" if team is not None else ""
    typer.echo(
        f"Created key {new.info.id} {new.info.name!r} ({new.info.role}{scope}). "
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
    data_dir: DataDir = Path(datadir.DEFAULT_DATA_DIR),
) -> None:
    """Revoke a key; running servers stop accepting it within CALLPULSE_KEY_CACHE_SECONDS."""

    async def action(sessions: Sessions) -> bool:
        return await revoke_key(sessions, key_id)

    if not _run(database_url, data_dir, action):
        typer.echo(f"No active key has id {key_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked key {key_id}.", err=True)


@keys_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of a table.")] = (
        False
    ),
    database_url: DatabaseUrl = None,
    data_dir: DataDir = Path(datadir.DEFAULT_DATA_DIR),
) -> None:
    """List every key (never the secrets), oldest first."""
    rows = [_row(key) for key in _run(database_url, data_dir, list_keys)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("No keys.", err=True)
        return
    table = [["ID", "NAME", "ROLE", "SCOPE", "CREATED", "STATE"]]
    table += [
        [
            str(r["id"]),
            str(r["name"]),
            str(r["role"]),
            _scope(r),
            str(r["created_at"]),
            _revoked(r),
        ]
        for r in rows
    ]
    widths = [max(len(line[col]) for line in table) for col in range(len(table[0]))]
    for line in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def _scope(row: dict[str, object]) -> str:
    if row["team_id"] is not None:
        return f"team {row['team_id']}"
    if row["rep_id"] is not None:
        return f"rep {row['rep_id']}"
    return "all"


def _revoked(row: dict[str, object]) -> str:
    return f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
