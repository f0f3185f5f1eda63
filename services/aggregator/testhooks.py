"""Test-only hooks of the aggregator (issue "Exact under faults", deliverable 5); each does
nothing unless its `CALLPULSE_TEST_...` variable is set.

- `CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS`: at the end of a table recovery, after Faust resumed
  the stream partitions, hold its seek to the committed offsets (at most that long) until
  records wait in the streams' queues: the window in which fetched records reach the streams
  and are then cleared unacked. With `CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MODE=hold` the stages
  also stall while the window is open, and the window stays open after the seek until the
  delivery loop moves a read offset again: the race then leaves holes in most runs.
- `CALLPULSE_TEST_COVERAGE_DIR`: each process appends to `<dir>/<pid>.jsonl` the offset ranges
  its stages acked (processed) and the offsets it is about to commit, written before each
  commit, so what a commit moves past was recorded first. `tests/soak/coverage.py` is the
  oracle that reads them.
- `CALLPULSE_TEST_DISABLE_FIXES=1`: Faust's stock behaviour, so the soak can show the failures:
  no commit hold or rewind patch, no confirmation of sends before a commit, no fail-stop (an
  exception in a batch goes to Faust, which acks the batch and restarts the agent).

`faust_compat.install()` calls `install(Consumer)`; the wrappers are put in only when their
variable is set, so a production worker runs none of this code.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import structlog

log = structlog.get_logger(__name__)

_WRAPPED = "__callpulse_test_hook__"


def fixes_disabled() -> bool:
    """`CALLPULSE_TEST_DISABLE_FIXES=1`: run Faust as shipped (the soak's control runs)."""
    return os.environ.get("CALLPULSE_TEST_DISABLE_FIXES", "") == "1"


def raise_as_faust(error: BaseException | None) -> None:
    """With the fixes disabled, a failed batch goes back to Faust instead of stopping."""
    if error is not None and fixes_disabled():
        raise error


def install(consumer_class: Any) -> None:
    """Wrap Faust's Consumer for the hooks whose variables are set (idempotent)."""
    if os.environ.get("CALLPULSE_TEST_COVERAGE_DIR"):
        _wrap(consumer_class, "ack", _recording_ack)
        _wrap(consumer_class, "_commit_offsets", _recording_commit)
    if os.environ.get("CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS"):
        _wrap(consumer_class, "perform_seek", _widened_seek)


def _wrap(owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
    original = getattr(owner, name)
    if getattr(original, _WRAPPED, False):
        return

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(original, self, *args, **kwargs)

    setattr(method, _WRAPPED, True)
    setattr(owner, name, method)


# -- the widened race -------------------------------------------------------------------------


QUEUED = 50
"""Records waiting in the streams' queues that make the widened window dangerous."""

_closed = asyncio.Event()
"""Cleared while the widened window is held open: the stages wait (`stall`) meanwhile."""
_closed.set()


async def stall() -> None:
    """At the start of each stage's batch: wait while the widened window is open, so records
    pile up in the streams' queues as they do behind a busy stage (a worker with a backlog)."""
    await _closed.wait()


async def _widened_seek(original: Callable[..., Any], consumer: Any) -> None:
    """At the end of a recovery (the flow running, the app still rebalancing), hold Faust's seek
    to the committed offsets until the resumed stream partitions have delivered records that
    wait in the streams' queues. In the "hold" mode the stages stall meanwhile, and the window
    stays open after the seek too, until the delivery loop has moved a read offset again (it
    goes on with the batch it fetched before the seek); each wait at most the hook's
    milliseconds. Faust clears
    the queues right after the seek returns, and the re-read of the cleared records is dropped
    as already read: what happens by chance in Faust's own window (one round trip to the group
    coordinator) when a stage is busy with a batch."""
    if not (consumer.flow_active and consumer.app.rebalancing):
        await original(consumer)
        return
    ms = float(os.environ.get("CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS", "0"))
    queues = consumer.app.flow_control._queues  # noqa: SLF001
    read = consumer._read_offset  # noqa: SLF001
    hold = os.environ.get("CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MODE") == "hold"
    if hold:
        _closed.clear()
    try:
        began = time.monotonic()
        while time.monotonic() - began < ms / 1000:
            if max((q.qsize() for q in queues), default=0) >= QUEUED:
                break
            await asyncio.sleep(0.001)
        waited = round((time.monotonic() - began) * 1000)
        queued = [q.qsize() for q in queues if q.qsize()]
        await original(consumer)
        sought, after = dict(read), time.monotonic()
        while hold and time.monotonic() - after < ms / 1000:
            if dict(read) != sought:
                break
            await asyncio.sleep(0.001)
        moved = dict(read) != sought
    finally:
        _closed.set()
    log.warning("test_widening_recovery_race", ms=ms, waited_ms=waited, queued=queued, moved=moved)


# -- offset coverage --------------------------------------------------------------------------


class Coverage:
    """Acked offsets of one process as ranges per partition, appended to its file at commits."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{os.getpid()}.jsonl"
        self.open: dict[tuple[str, int], list[int]] = {}
        """(topic, partition) -> [first, last] acked and not yet written (first > last: none)."""
        self.closed: list[tuple[str, int, int, int]] = []

    def acked(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        span = self.open.get(key)
        if span is not None and offset == span[1] + 1:
            span[1] = offset
            return
        if span is not None and span[0] <= span[1]:
            self.closed.append((topic, partition, span[0], span[1]))
        self.open[key] = [offset, offset]

    def write(self, committing: Mapping[Any, int]) -> None:
        """One line: the ranges acked since the last line, and the offsets about to commit."""
        ranges = list(self.closed)
        for (topic, partition), span in self.open.items():
            if span[0] <= span[1]:
                ranges.append((topic, partition, span[0], span[1]))
                span[0] = span[1] + 1
        self.closed = []
        commits = [(tp.topic, tp.partition, offset) for tp, offset in committing.items()]
        line = orjson.dumps({"t": time.time(), "acked": ranges, "commit": commits})
        # unbuffered: a SIGKILL right after loses nothing that was written
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line + b"\n")
        finally:
            os.close(fd)


_coverage: list[Coverage] = []


def _recorder() -> Coverage:
    if not _coverage:
        _coverage.append(Coverage(Path(os.environ["CALLPULSE_TEST_COVERAGE_DIR"])))
    return _coverage[0]


def _recording_ack(original: Callable[..., bool], consumer: Any, message: Any) -> bool:
    acked = original(consumer, message)
    if acked:
        _recorder().acked(message.topic, message.partition, message.offset)
    return acked


async def _recording_commit(
    original: Callable[..., Any],
    consumer: Any,
    offsets: Mapping[Any, int],
    *args: Any,
    **kwargs: Any,
) -> bool:
    _recorder().write(offsets)
    return bool(await original(consumer, offsets, *args, **kwargs))
