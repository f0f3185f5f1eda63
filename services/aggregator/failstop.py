"""Fail-stop: a worker that cannot process a batch, or cannot deliver what it sent, exits at
once without committing its offsets, so the restart reads the batch again in order.

Faust's `take()` acks every buffered event in its `finally` when the agent raises, and its
supervisor restarts the agent, so the next commit would move past a batch that failed half way
(faust-streaming#527). Exiting with `os._exit` runs no `finally` and no commit. The count of
fail-stops is kept in the worker's data folder and exported at the next start.

A test hook (`CALLPULSE_TEST_RAISE_ONCE_STAGE1` or `..._STAGE2` = `<marker>:<path>`) raises once
in that stage on a batch holding `<marker>` (a call id is in its events and its facts packs),
writing `<path>` first so that the restarted worker goes on: the exception test proves the batch
is then processed as if nothing had happened.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

import structlog

log = structlog.get_logger(__name__)

EXIT_CODE = 70
"""EX_SOFTWARE: the supervisor (systemd, Kubernetes, services.sh) restarts the worker."""
RECORD = "fail-stops.json"


def stop(data_dir: str | Path, reason: str, error: BaseException | None = None) -> NoReturn:
    """Log, count, and exit at once: no `finally`, no commit of offsets."""
    log.critical("worker_fail_stop", reason=reason, exc_info=error)
    try:
        path = Path(data_dir) / RECORD
        path.parent.mkdir(parents=True, exist_ok=True)
        count = fail_stops(data_dir) + 1
        path.write_text(json.dumps({"count": count, "last": time.time(), "reason": reason}))
    except OSError:  # counting must not keep the worker from stopping
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_CODE)


def fail_stops(data_dir: str | Path) -> int:
    """How many times a worker with this data folder fail-stopped."""
    try:
        return int(json.loads((Path(data_dir) / RECORD).read_text())["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def raise_once(stage: str, values: list[bytes]) -> None:
    """The test hook: raise if a value holds the stage's marker and its file is not written."""
    hook = os.environ.get(f"CALLPULSE_TEST_RAISE_ONCE_{stage.upper()}")
    if not hook:
        return
    marker, _, path = hook.partition(":")
    if any(marker.encode() in value for value in values) and not Path(path).exists():
        Path(path).write_text(marker)
        raise RuntimeError(f"test fault: a batch holding {marker!r}")
