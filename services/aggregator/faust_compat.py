"""Every use of faust-streaming's and aiokafka's internals, in one place, checked at start.

The Faust driver needs five things the libraries do not offer publicly: the worker's own
aiokafka producer (the outbox appends record batches to it, and Faust's commit flushes it), a
table's underlying dict (the outbox writes the changelog records itself), whether table
recovery has completed, a hook before each commit of offsets (`before_commit`: the driver awaits
its own sends there, since Faust's flush does not raise on a failed one), and two patches of
Faust's consumer that restore at-least-once:

1. *Rewind partitions that have no committed offset.* Faust drops messages it has already
   fetched whenever its flow stops (rebalances, the end of table recovery) and relies on a
   later seek to the committed offsets to read them again. aiokafka's `seek_to_committed()`
   skips partitions whose committed offset is missing or 0, so on a partition the group has
   never committed the dropped messages were never read again. Such partitions are reset to
   their beginning, which is what `auto_offset_reset="earliest"` means for them (their end
   for "latest"); changelog partitions are left to Faust.
2. *Hold the commit on any gap at the head.* `Consumer._new_offset` refuses to commit past a
   gap at the head of the acked offsets only when it spans two or more offsets, so a single
   dropped message right at the committed offset was committed past and never read again.
   Any gap at the head now holds the commit and seeks the partition back to the missing
   message; gaps Faust recorded itself (compaction, transaction markers) are still Faust's.

`docs/decisions/faust-offsets.md` tells how both were found, and why the race at the end of
table recovery is repaired after the fact rather than by seeking before resuming. `install()`
checks the installed versions and that every attribute used here still exists, and refuses to
start otherwise: after an upgrade, at-least-once must not silently stop working.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import inspect
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer

from services.aggregator import testhooks

log = structlog.get_logger(__name__)

SUPPORTED = {"faust-streaming": ("0.15.3",), "aiokafka": ("0.14.0",)}
"""The versions whose internals this module was checked against."""

_CONSUMER_STATE = ("_acked", "_gap", "_committed_offset")
"""Attributes of Faust's Consumer that the commit patch reads (set in its __init__)."""


class IncompatibleFaust(RuntimeError):
    """The installed faust-streaming or aiokafka is not what the patches were checked against."""


def problems() -> list[str]:
    """What does not match: versions, missing methods or attributes (empty when all is well)."""
    found = []
    for package, versions in SUPPORTED.items():
        installed = importlib.metadata.version(package)
        if installed not in versions:
            found.append(f"{package} {installed} is installed; checked against {versions}")
    methods = (
        (Consumer, "_new_offset"),
        (Consumer, "_commit_offsets"),
        (AIOKafkaConsumerThread, "seek_to_committed"),
        (AIOKafkaConsumerThread, "call_thread"),
        (AIOKafkaConsumerThread, "_ensure_consumer"),
        (Producer, "_ensure_producer"),
    )
    for owner, name in methods:
        if not callable(getattr(owner, name, None)):
            found.append(f"{owner.__module__}.{owner.__qualname__}.{name} is gone")
    consumer_init = inspect.getsource(Consumer.__init__)
    for name in _CONSUMER_STATE:
        if f"self.{name}" not in consumer_init:
            found.append(f"faust Consumer no longer sets {name}")
    if "self.completed" not in inspect.getsource(Recovery.__init__):
        found.append("faust Recovery no longer has `completed`")
    return found


def check() -> None:
    """Raise `IncompatibleFaust` naming every mismatch."""
    found = problems()
    if found:
        raise IncompatibleFaust(
            "callpulse's aggregator patches Faust internals for at-least-once and cannot run "
            "with these versions: " + "; ".join(found) + ". Install the versions pinned in "
            "pyproject.toml, or re-check services/aggregator/faust_compat.py against the new ones."
        )


_faust_new_offset = Consumer._new_offset  # noqa: SLF001
_faust_commit_offsets = Consumer._commit_offsets  # noqa: SLF001


def install() -> None:
    """Check, then patch Faust's seek and commit as described above (idempotent)."""
    check()
    if not testhooks.fixes_disabled():  # the soak's control runs: Faust as shipped
        AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed  # type: ignore[method-assign,assignment]
        Consumer._new_offset = _new_offset  # type: ignore[method-assign]  # noqa: SLF001
        Consumer._commit_offsets = _commit_offsets  # type: ignore[method-assign]  # noqa: SLF001
    testhooks.install(Consumer)


BeforeCommit = Callable[[], Awaitable[None]]
_before_commit: weakref.WeakKeyDictionary[Any, BeforeCommit] = weakref.WeakKeyDictionary()


def before_commit(app: Any, hook: BeforeCommit) -> None:
    """Run `hook` before each commit of the app's offsets: Faust's own flush of the producer
    does not raise when a send failed, so the driver awaits what it sent itself (and stops
    the worker, never committing, when something was not delivered)."""
    _before_commit[app] = hook


async def _commit_offsets(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
    hook = _before_commit.get(self.app)
    if hook is not None:
        await hook()
    return await _faust_commit_offsets(self, offsets, start_new_transaction)


# -- accessors the driver uses ---------------------------------------------------------------


async def producer(app: Any) -> Any:
    """The worker's own aiokafka producer: Faust flushes it before committing offsets."""
    return app.producer._ensure_producer()  # noqa: SLF001


def table_data(table: Any) -> MutableMapping[bytes, bytes]:
    """A table's underlying dict (the outbox sends its changelog records itself)."""
    data: MutableMapping[bytes, bytes] = table.data
    return data


def tables_recovered(app: Any) -> bool:
    """Whether Faust has replayed every table from its changelog."""
    return bool(app.tables.recovery.completed.is_set())


# -- the patches ------------------------------------------------------------------------------


async def seek_to_committed_or_beginning(
    consumer: AIOKafkaConsumer, *, changelogs: Collection[str] = (), reset: str = "earliest"
) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset; a stream partition with none goes
    where the offset reset says (its beginning for "earliest", its end for "latest"). Changelog
    partitions are Faust's: never rewound here."""
    committed: Mapping[TopicPartition, int | None] = await consumer.seek_to_committed()
    uncommitted = [tp for tp, off in committed.items() if not off and tp.topic not in changelogs]
    if uncommitted and reset == "latest":
        await consumer.seek_to_end(*uncommitted)
    elif uncommitted:
        await consumer.seek_to_beginning(*uncommitted)
    return committed


async def _seek_to_committed(self: Any) -> Mapping[TopicPartition, int | None]:
    consumer = self._ensure_consumer()
    app = self.consumer.app
    changelogs = set(app.tables.changelog_topics)
    reset = app.conf.consumer_auto_offset_reset
    seek = functools.partial(seek_to_committed_or_beginning, changelogs=changelogs, reset=reset)
    return await self.call_thread(seek, consumer)  # type: ignore[no-any-return]


def head_is_missing(acked: list[int], committed: int | None) -> bool:
    """Whether the next offset to commit (`committed`, Kafka's "next to read") was never acked."""
    return bool(acked) and committed is not None and min(acked) > committed


def _new_offset(self: Any, tp: Any) -> int | None:
    committed = self._committed_offset[tp]
    held = _held.setdefault(self, {})
    if not self._gap[tp] and head_is_missing(self._acked[tp], committed):
        held.setdefault(tp, time.monotonic())
        _read_again(self, tp, committed)
        return None
    held.pop(tp, None)
    return _faust_new_offset(self, tp)


_held: weakref.WeakKeyDictionary[Any, dict[Any, float]] = weakref.WeakKeyDictionary()
"""Per consumer: since when (monotonic) each partition's commit has been held."""


def held_commits(app: Any) -> dict[tuple[str, int], float]:
    """(topic, partition) -> seconds its commit has been held by a missing head (none: 0)."""
    consumer = getattr(app, "_consumer", None)
    now = time.monotonic()
    return {(tp.topic, tp.partition): now - at for tp, at in _held.get(consumer, {}).items()}


RESEEK_SECONDS = 5.0
"""How long a held commit waits before seeking back to the missing message again."""

_asked: weakref.WeakKeyDictionary[Any, dict[Any, tuple[int, float]]] = weakref.WeakKeyDictionary()
"""Per consumer: the offset each partition was last sought back to, and when."""
_pending: set[asyncio.Future[None]] = set()


def _read_again(consumer: Any, tp: Any, offset: int) -> None:
    """Seek the partition back to the missing message; the messages after it come again too
    (the stages apply each call version once). Again every `RESEEK_SECONDS` while the commit
    stays held: Faust's delivery loop, still going through a batch fetched before the seek,
    can move the partition's read offset past the message again, and the re-read is dropped."""
    asked = _asked.setdefault(consumer, {})
    now = time.monotonic()
    last = asked.get(tp)
    if last is None or last[0] != offset or now - last[1] >= RESEEK_SECONDS:
        again = last is not None and last[0] == offset
        log.warning("commit_held_reading_again", tp=str(tp), offset=offset, again=again)
        asked[tp] = (offset, now)
        task = asyncio.ensure_future(consumer.seek(tp, offset))
        _pending.add(task)
        task.add_done_callback(_pending.discard)
