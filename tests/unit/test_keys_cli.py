"""`callpulse keys`: create prints the secret once, list never shows it, revoke stops it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import typer
from typer.testing import CliRunner

from services.api.db.engine import database, migrate
from services.api.keys import Authenticator, Principal
from services.keys_cli import keys_app
from services.kit import logging as kit_logging

# Mounted the way services/cli.py mounts it: `callpulse keys ...`.
cli = typer.Typer()
cli.add_typer(keys_app, name="keys")


@pytest.fixture(autouse=True)
def isolated_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI configures structlog for the process: undo it, so later tests see their own."""
    saved = structlog.get_config()
    configure = kit_logging.configure

    def configure_uncached(level: str = "INFO", json: bool | None = None) -> None:
        configure(level, json)
        structlog.configure(cache_logger_on_first_use=False)  # no logger keeps this set-up

    monkeypatch.setattr(kit_logging, "configure", configure_uncached)
    yield
    structlog.configure(**saved)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A database set up as a server's first start does (keys refuses one it never was)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    asyncio.run(migrate(url))
    return url


def keys(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["keys", *args, "--database-url", url])
    return result.exit_code, result.stdout, result.stderr


def authenticate(url: str, key: str) -> Principal | None:
    async def check() -> Principal | None:
        async with database(url) as sessions:
            return await Authenticator(sessions, ttl=0).authenticate(key)

    return asyncio.run(check())


def test_create_prints_the_key_alone_on_stdout_and_it_works(url: str) -> None:
    code, out, err = keys(url, "create", "--name", "tv-floor-2", "--role", "viewer")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("cp_")
    assert "\n" not in key
    assert "only time" in err
    assert "tv-floor-2" in err
    principal = authenticate(url, key)
    assert principal is not None
    assert (principal.name, principal.role) == ("tv-floor-2", "viewer")


def test_list_shows_keys_without_secrets(url: str) -> None:
    _, first, _ = keys(url, "create", "--name", "ops", "--role", "admin")
    _, second, _ = keys(url, "create", "--name", "lead", "--role", "supervisor")
    code, out, _ = keys(url, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["id"], r["name"], r["role"], r["revoked_at"]) for r in rows] == [
        (1, "ops", "admin", None),
        (2, "lead", "supervisor", None),
    ]
    code, table, _ = keys(url, "list")
    assert code == 0
    assert "supervisor" in table
    assert "active" in table
    for secret in (first.strip(), second.strip()):
        assert secret not in out
        assert secret not in table


def test_revoke_stops_the_key_and_a_second_revoke_fails(url: str) -> None:
    _, out, _ = keys(url, "create", "--name", "old-tv")
    key = out.strip()
    code, _, err = keys(url, "revoke", "1")
    assert code == 0, err
    assert authenticate(url, key) is None
    _, listed, _ = keys(url, "list", "--json")
    assert json.loads(listed)[0]["revoked_at"] is not None
    code, _, err = keys(url, "revoke", "1")
    assert code == 1
    assert "No active key" in err
    code, _, _ = keys(url, "revoke", "99")
    assert code == 1


@pytest.mark.parametrize(
    "args",
    [
        ["create", "--name", "x", "--role", "owner"],
        ["create", "--name", "   "],
        ["create"],
        ["revoke", "abc"],
    ],
)
def test_bad_arguments_are_usage_errors(url: str, args: list[str]) -> None:
    code, out, _ = keys(url, *args)
    assert code == 2
    assert out == ""


def test_list_of_an_empty_database(url: str) -> None:
    code, out, err = keys(url, "list")
    assert code == 0
    assert out == ""
    assert "No keys" in err


def test_a_team_key_carries_its_team_and_an_admin_key_never_does(url: str) -> None:
    code, out, err = keys(url, "create", "--name", "lead-a", "--role", "supervisor", "--team", "a")
    assert code == 0, err
    assert "team 'a' only" in err
    principal = authenticate(url, out.strip())
    assert principal is not None
    assert (principal.role, principal.team_id) == ("supervisor", "a")
    code, out, _ = keys(url, "create", "--name", "root", "--role", "admin", "--team", "a")
    assert (code, out) == (2, "")
    code, out, _ = keys(url, "create", "--name", "x", "--team", "  ")
    assert (code, out) == (2, "")
    _, listed, _ = keys(url, "list", "--json")
    assert [(r["name"], r["team_id"]) for r in json.loads(listed)] == [("lead-a", "a")]
    _, table, _ = keys(url, "list")
    assert "team a" in table
