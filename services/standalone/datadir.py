"""The embedded mode's data folder: where its files are, which database it uses, who holds it.

`callpulse run` and `callpulse keys` resolve the folder and the database the same way, so a key
made by `keys create` is one the running server knows.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

DATA_DIR_ENV = "CALLPULSE_DATA_DIR"
DEFAULT_DATA_DIR = ".callpulse"
DATABASE_URL_ENV = "CALLPULSE_DATABASE_URL"
DATABASE_FILE = "callpulse.db"
LOCK_FILE = "lock"
SECRET_ENV = "CALLPULSE_WEBHOOK_SECRET"  # noqa: S105 - the name of the variable
SECRET_FILE = "webhook_secret"  # noqa: S105 - a file name


def sqlite_url(data_dir: Path) -> str:
    """The SQLite URL of the history, roster and keys database in `data_dir`."""
    return f"sqlite+aiosqlite:///{data_dir / DATABASE_FILE}"


def database_url(data_dir: Path, explicit: str | None = None) -> str:
    """`explicit`, else CALLPULSE_DATABASE_URL, else the SQLite file in `data_dir`."""
    return explicit or os.environ.get(DATABASE_URL_ENV) or sqlite_url(data_dir)


class DataDirBusy(Exception):
    """Another callpulse process holds the data folder."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        self.data_dir = data_dir
        self.holder = holder
        super().__init__(
            f"callpulse: {data_dir} is in use by another callpulse ({holder}); stop it first, "
            "or give this one its own folder with --data-dir"
        )


@contextlib.contextmanager
def hold(data_dir: Path, owner: str) -> Iterator[None]:
    """Hold `data_dir` for this process (an advisory lock on `data_dir/lock`) while inside.

    The kernel releases the lock when the process ends however it ends, so a lock left by a
    killed process is never in the way; the file keeps the last holder's description.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    handle: IO[str] = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise DataDirBusy(data_dir, handle.read().strip() or "pid unknown") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, {owner}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def webhook_secret(data_dir: Path) -> str | None:
    """CALLPULSE_WEBHOOK_SECRET, else the secret `callpulse run` keeps in `data_dir`, else None."""
    secret = os.environ.get(SECRET_ENV)
    if secret:
        return secret
    stored = data_dir / SECRET_FILE
    return stored.read_text().strip() if stored.exists() else None
