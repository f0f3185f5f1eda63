"""Every use of faust-streaming's and aiokafka's internals, in one place, checked at start.

The Faust driver needs eight things the libraries do not offer publicly: the worker's own
aiokafka producer (the outbox appends record batches to it, and Faust's commit flushes it), a
table's underlying dict (the outbox writes the changelog records itself), whether table
recovery has completed, a hook before each commit of offsets (`before_commit`: the driver awaits
its own sends there, since Faust's flush does not raise on a failed one), when the group
coordinator last confirmed the worker's membership (`membership`, for the zombie fence in
`fence.py`: aiokafka's heartbeat and join are wrapped to record it), a guard before each
produce request leaves the producer (`guard_sends`: the fence for records handed to the
producer before the worker froze), word of the failures Faust's table recovery logs and goes on
after (`on_recovery_failure`: the worker stops instead of counting on unrecovered tables),
how long the broker may hold the consumer's fetches (`fetch_max_wait`: Faust fixes 1.5 s),
and two patches of Faust's consumer that restore at-least-once:

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
import logging
import time
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
)
from typing import Any

import rocksdict
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.producer import AIOKafkaProducer
from aiokafka.producer.sender import Sender
from faust import stores as faust_stores
from faust.stores import rocksdb as faust_rocksdb
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from services.aggregator import testhooks
from services.kit.partitioning import partition_for

log = structlog.get_logger(__name__)

SUPPORTED = {"faust-streaming": ("0.15.3",), "aiokafka": ("0.14.0",)}
"""The versions whose internals this module was checked against."""

_CONSUMER_STATE = ("_acked", "_gap", "_committed_offset", "_read_offset", "can_resume_flow")
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
        (Consumer, "perform_seek"),
        (Consumer, "stop_flow"),
        (Consumer, "_reset_state"),
        (Consumer, "seek"),
        (Consumer, "_is_changelog_tp"),
        (AIOKafkaConsumerThread, "seek_to_committed"),
        (AIOKafkaConsumerThread, "call_thread"),
        (AIOKafkaConsumerThread, "_ensure_consumer"),
        (AIOKafkaConsumerThread, "_create_worker_consumer"),
        (Producer, "_ensure_producer"),
        (GroupCoordinator, "_do_heartbeat"),
        (GroupCoordinator, "ensure_active_group"),
        (Sender, "_send_produce_req"),
    )
    for owner, name in methods:
        if not callable(getattr(owner, name, None)):
            found.append(f"{owner.__module__}.{owner.__qualname__}.{name} is gone")
    consumer_init = inspect.getsource(Consumer.__init__)
    for name in _CONSUMER_STATE:
        if f"self.{name}" not in consumer_init:
            found.append(f"faust Consumer no longer sets {name}")
    if "self._paused_partitions" not in inspect.getsource(Consumer._reset_state):  # noqa: SLF001
        found.append("faust Consumer no longer sets _paused_partitions")
    coordinator_init = inspect.getsource(GroupCoordinator.__init__)
    for name in ("generation", "group_id"):
        if f"self.{name}" not in coordinator_init:
            found.append(f"aiokafka GroupCoordinator no longer sets {name}")
    found += [
        problem
        for owner, name, text, problem in _SOURCE_CHECKS
        if text not in inspect.getsource(getattr(owner, name))
    ]
    reader = inspect.getsource(inspect.getmodule(Recovery))  # type: ignore[arg-type]
    for message in SWALLOWED_IN_RECOVERY:
        if f'f"{message} ' not in reader:
            found.append(f"faust Recovery no longer logs {message!r}")
    if "self._queues" not in inspect.getsource(FlowControlEvent.__init__):
        found.append("mode FlowControlEvent no longer keeps _queues")
    found += _store_problems()
    return found


_SOURCE_CHECKS: tuple[tuple[type, str, str, str], ...] = (
    (
        AIOKafkaConsumer,
        "__init__",
        "self._fetch_max_wait_ms = fetch_max_wait_ms",
        "aiokafka AIOKafkaConsumer no longer keeps _fetch_max_wait_ms",
    ),
    (
        AIOKafkaConsumer,
        "start",
        "fetch_max_wait_ms=self._fetch_max_wait_ms",
        "aiokafka AIOKafkaConsumer no longer hands _fetch_max_wait_ms to its fetcher",
    ),
    (
        AIOKafkaProducer,
        "__init__",
        "self._sender = Sender(",
        "aiokafka AIOKafkaProducer no longer sets _sender",
    ),
    (Recovery, "__init__", "self.completed", "faust Recovery no longer has `completed`"),
)
"""(class, method, text the method's source must hold, what is wrong when it does not)."""


def _store_problems() -> list[str]:
    """What `RocksStore` relies on in Faust's RocksDB store."""
    found = []
    if not faust_rocksdb.USE_ROCKSDICT:
        found.append("faust's RocksDB store does not use rocksdict")
    for name in ("_visible_items", "revoke_partitions", "persisted_offset", "offset_key"):
        if not hasattr(faust_rocksdb.Store, name):
            found.append(f"faust.stores.rocksdb.Store.{name} is gone")
    if not isinstance(getattr(faust_stores.STORES, "aliases", None), dict):
        found.append("faust.stores.STORES has no aliases")
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
_faust_perform_seek = Consumer.perform_seek
_aiokafka_do_heartbeat = GroupCoordinator._do_heartbeat  # noqa: SLF001
_aiokafka_ensure_active_group = GroupCoordinator.ensure_active_group
_faust_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer  # noqa: SLF001


def install() -> None:
    """Check, then patch Faust's seek and commit as described above (idempotent)."""
    check()
    if not testhooks.fixes_disabled():  # the soak's control runs: Faust as shipped
        AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed  # type: ignore[method-assign,assignment]
        Consumer._new_offset = _new_offset  # type: ignore[method-assign]  # noqa: SLF001
        Consumer._commit_offsets = _commit_offsets  # type: ignore[method-assign]  # noqa: SLF001
        Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
        GroupCoordinator._do_heartbeat = _do_heartbeat  # noqa: SLF001
        GroupCoordinator.ensure_active_group = _ensure_active_group
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # noqa: SLF001
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
    await checkpoint_stores(self)  # what was sent is in Kafka: the local stores may follow
    done: bool = await _faust_commit_offsets(self, offsets, start_new_transaction)
    if done:  # Faust knows these heads now
        for tp in offsets:
            _starts.pop((tp.topic, tp.partition), None)
    return done


_fetch_waits: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def fetch_max_wait(app: Any, ms: int) -> None:
    """Let the broker hold the app's fetches at most `ms` (Faust fixes 1,500 ms; the setting
    `FETCH_MAX_WAIT_MS` tells why that is too long for a worker reading its own facts)."""
    _fetch_waits[app] = ms


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _faust_create_worker_consumer(self, transport)
    ms = _fetch_waits.get(self.app)
    if ms is not None:  # read by the consumer's start, which builds its fetcher
        consumer._fetch_max_wait_ms = ms  # noqa: SLF001
    return consumer


# -- accessors the driver uses ---------------------------------------------------------------


async def producer(app: Any) -> Any:
    """The worker's own aiokafka producer: Faust flushes it before committing offsets."""
    return app.producer._ensure_producer()  # noqa: SLF001


def guard_sends(producer: Any, guard: Callable[[], Awaitable[None]]) -> None:
    """Await `guard` before each produce request of this aiokafka producer goes to a broker.

    A record handed to the producer is sent by its background task, not by the caller: a
    worker frozen in between (SIGSTOP, a paused VM) sends it when it wakes, before anything
    else runs, so a check before handing records over (`Worker.producer`) cannot stop it. The
    guard may wait, or stop the process; it runs on every request (also retries)."""
    sender = producer._sender  # noqa: SLF001
    if sender in _guarded:
        return
    send = sender._send_produce_req  # noqa: SLF001

    async def guarded(node_id: int, batches: Any) -> None:
        await guard()
        await send(node_id, batches)

    sender._send_produce_req = guarded  # noqa: SLF001
    _guarded.add(sender)


_guarded: weakref.WeakSet[Any] = weakref.WeakSet()


def table_data(table: Any) -> MutableMapping[bytes, bytes]:
    """A table's underlying dict (the outbox sends its changelog records itself); of a table
    in RocksDB, its store's bytes without Faust's serializer layers (`RawRocks`)."""
    data: MutableMapping[bytes, bytes] = table.data
    if isinstance(data, RocksStore):
        return RawRocks(data)
    return data


class RawRocks(MutableMapping[bytes, bytes]):
    """A `RocksStore` as a dict of bytes. The tables' keys and values are bytes already (raw
    serializers): Faust's `SerializedStore` still ran both through its serializer registry on
    every read and write, and turned every miss into a KeyError its `get` then caught, ~4 % of
    a worker draining a backlog (py-spy, 2026-12-04)."""

    __slots__ = ("store",)

    def __init__(self, store: RocksStore) -> None:
        self.store = store

    def get(self, key: bytes, default: Any = None) -> Any:
        """The value, or `default`."""
        value = self.store._get(key)  # noqa: SLF001
        return default if value is None else value

    def __getitem__(self, key: bytes) -> bytes:
        value = self.store._get(key)  # noqa: SLF001
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.store._set(key, value)  # noqa: SLF001

    def __delitem__(self, key: bytes) -> None:
        self.store._del(key)  # noqa: SLF001

    def pop(self, key: bytes, default: Any = None) -> Any:
        """Delete the key; its value before, or `default`."""
        value = self.get(key)
        self.store._del(key)  # noqa: SLF001
        return default if value is None else value

    def __iter__(self) -> Iterator[bytes]:
        return self.store._iterkeys()  # noqa: SLF001

    def __len__(self) -> int:
        return self.store._size()  # noqa: SLF001

    def items(self) -> Any:
        """Every key and value, read together (not a read per key)."""
        return self.store._iteritems()  # noqa: SLF001


RECOVERY_LOGGER = "faust.tables.recovery"
SWALLOWED_IN_RECOVERY = ("Error in recovery", "recovery unknown topic")
"""How Faust's changelog reader (`Recovery._slurp_changelogs`) reports the two failures it
goes on after: any exception while applying changelog records (it then signals the end of
recovery, so the agents start on tables that are not recovered), and a record of a changelog
partition neither active nor standby (applied to the table of the record before it)."""


def on_recovery_failure(stop: Callable[[str], object]) -> None:
    """Call `stop` with Faust's message when its recovery swallows a failure (see
    `SWALLOWED_IN_RECOVERY`): a table missing records would count calls again as new ones."""

    global _recovery_watch

    def watch(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(SWALLOWED_IN_RECOVERY):
            stop(message)
        return True

    recovery_log = logging.getLogger(RECOVERY_LOGGER)
    recovery_log.setLevel(logging.WARNING)  # its warnings must reach the filter whatever the root
    if _recovery_watch is not None:  # one worker per process: the app built last watches
        recovery_log.removeFilter(_recovery_watch)
    recovery_log.addFilter(watch)
    _recovery_watch = watch


_recovery_watch: Callable[[logging.LogRecord], bool] | None = None


def keep_changelog_reads_on_resume(app: Any) -> None:
    """Stop `flow_control.resume()` from dropping changelog records already fetched.

    Faust's changelog queue is cleared on every resume, and Recovery resumes the flow at the
    end of each table recovery, after standby partitions have started reading: the standby
    records fetched but not yet applied are dropped, and reading goes on after them. A standby
    copy then misses changelog records for good; promoted when its worker's partner dies, it
    serves call states without them, and stage 1 counts those calls again as new ones. Found by
    reading Faust's code (docs/decisions/state-store.md, session 14); the loss the rocksdb
    test_race failures showed was another one, the flow stop before the streams' seek
    (`read_changelogs_again`, session 15). The rebalance path still clears the queue
    (`flow_control.clear()` when partitions are revoked): the next recovery seeks the
    standbys back to what they applied."""
    flow = app.flow_control
    changelogs = app.tables.changelog_queue
    managed = flow._queues  # noqa: SLF001
    resume = flow.resume

    def resume_keeping_changelog_records() -> None:
        managed.discard(changelogs)
        try:
            resume()
        finally:
            managed.add(changelogs)

    flow.resume = resume_keeping_changelog_records


def tables_recovered(app: Any) -> bool:
    """Whether Faust has replayed every table from its changelog."""
    return bool(app.tables.recovery.completed.is_set())


def membership(app: Any) -> tuple[int, float] | None:
    """The worker's group generation and when (monotonic) the coordinator last confirmed its
    membership: a heartbeat answered or a join completed (None: not in the group yet). The
    zombie fence (`fence.py`) reads it before every write."""
    return _membership.get(app.conf.id)


async def take_batches(stream: Any, size: int, linger: float = 0.0) -> AsyncIterator[list[Any]]:
    """The stream's events in batches of at most `size`, acked once the consumer has processed
    a batch and asked for the next (never when it raised: the worker fail-stops).

    Faust's `take()` waits its whole `within` after every batch, and stops filling the buffer
    while a batch is processed, so an event waits up to the batch's processing plus `within` at
    each stage (issue 11: p99 806 ms end to end at 500 events/s). Here the next batch fills
    while one is processed, and it is taken as soon as the consumer is free: what arrived
    meanwhile (natural batching: small batches when the floor is quiet, full ones when the
    worker is behind). With `linger` > 0 a batch waits for more until `linger` after its first
    event arrived (an event that came while the last batch was processed waits no longer)."""
    pending: list[Any] = []
    has_items, room, full = asyncio.Event(), asyncio.Event(), asyncio.Event()
    room.set()
    first_at = 0.0  # when the batch's first event arrived (monotonic)

    async def add_to_buffer(value: Any) -> Any:
        try:
            while len(pending) >= size:  # at most `size` wait: the stream stops reading
                room.clear()
                await stream.wait(room)
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_batches found no current event")
            if not pending:
                nonlocal first_at
                first_at = time.monotonic()
            pending.append(event)
            has_items.set()
            if len(pending) >= size:
                full.set()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # as Faust's take(): the stream crashes with it
            await stream.crash(error)
        return value

    queue = stream.channel.queue
    acks = stream.enable_acks
    stream.enable_acks = False  # acked here, after the consumer processed the batch
    stream.add_processor(add_to_buffer)
    stream._enable_passive(stream.channel.__aiter__())  # noqa: SLF001
    try:
        while not stream.should_stop:
            if await stream.wait_for_stopped(has_items):
                break
            # what Faust has already delivered to the stream joins this batch: the drainer adds
            # a few events per turn of the loop, and a batch taken at the first would be of a
            # few (the worker fell behind at 500/s); it stops when the drainer does (a flow
            # stopped by a rebalance)
            idle = 0
            while not full.is_set() and queue.qsize() and idle < 3:
                before = len(pending)
                await asyncio.sleep(0)  # turns of the loop, not a wait
                idle = idle + 1 if len(pending) == before else 0
            wait = first_at + linger - time.monotonic()  # linger counts from the first event
            if wait > 0 and not full.is_set():
                await stream.wait_for_stopped(full, timeout=wait)
            batch = list(pending)
            pending.clear()
            has_items.clear()
            full.clear()
            room.set()
            yield batch
            for event in batch:
                await stream.ack(event)
    finally:
        stream.enable_acks = acks
        stream._processors.remove(add_to_buffer)  # noqa: SLF001


# -- the patches ------------------------------------------------------------------------------

_membership: dict[str, tuple[int, float]] = {}
"""group id -> (generation, monotonic time of the last proof); written in the consumer thread."""


def _proven(coordinator: Any) -> None:
    _membership[coordinator.group_id] = (coordinator.generation, time.monotonic())


async def _do_heartbeat(self: Any) -> bool:
    """aiokafka's heartbeat, recording each one the coordinator answered for this generation
    (True is also its answer during a rebalance, when the member is still in the group)."""
    ok: bool = await _aiokafka_do_heartbeat(self)
    if ok:
        _proven(self)
    return ok


async def _ensure_active_group(self: Any, subscription: Any, prev_assignment: Any) -> Any:
    """aiokafka's join, recording the new generation once joined."""
    assignment = await _aiokafka_ensure_active_group(self, subscription, prev_assignment)
    if assignment is not None:
        _proven(self)
    return assignment


async def seek_to_committed_or_beginning(
    consumer: AIOKafkaConsumer, *, changelogs: Collection[str] = (), reset: str = "earliest"
) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset; a stream partition with none goes
    where the offset reset says (its beginning for "earliest", its end for "latest"). Changelog
    partitions are Faust's: never rewound here."""
    committed: Mapping[TopicPartition, int | None] = await consumer.seek_to_committed()
    uncommitted = [tp for tp, off in committed.items() if not off and tp.topic not in changelogs]
    for tp, offset in committed.items():
        if offset:
            _starts.pop((tp.topic, tp.partition), None)
    starts = await reset_offsets(consumer, uncommitted, reset) if uncommitted else {}
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
        _starts[(tp.topic, tp.partition)] = offset
    return committed


async def reset_offsets(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], reset: str
) -> Mapping[TopicPartition, int]:
    """Where the offset reset puts partitions that have no committed offset: their end for
    "latest", else their beginning."""
    if reset == "latest":
        ends: Mapping[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    beginnings: Mapping[TopicPartition, int] = await consumer.beginning_offsets(partitions)
    return beginnings


_starts: dict[tuple[str, int], int] = {}
"""Stream partitions whose committed offset Faust does not know: where they start, from the seek
(never committed: their first offset) or from the group coordinator (`_look_up_head`). Until
this worker's next commit of the partition it stands for the committed offset in the commit
hold. Soak with rocksdb, 2026-12-02: a partition never committed lost its first 826 events to
the race, and a partition assigned again without a seek (Faust forgets its committed offsets
at every revocation) had a worker commit past offset 10; both times Faust committed from the
first acked offset, since the hold needs a committed offset to see a missing head."""

_looking: set[tuple[str, int]] = set()


def _look_up_head(consumer: Any, tp: Any) -> None:
    """Ask the group coordinator where the partition's next commit must start (its committed
    offset, else where the offset reset puts it) into `_starts`; the commit waits meanwhile."""
    key = (tp.topic, tp.partition)
    if key in _looking:
        return
    _looking.add(key)
    task = asyncio.ensure_future(_head_of(consumer, tp, key))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _head_of(consumer: Any, tp: Any, key: tuple[str, int]) -> None:
    partition = TopicPartition(tp.topic, tp.partition)
    reset = consumer.app.conf.consumer_auto_offset_reset

    async def ask(client: AIOKafkaConsumer) -> int:
        committed = await client.committed(partition)
        if committed is not None:
            return int(committed)
        return (await reset_offsets(client, [partition], reset))[partition]

    try:
        thread = consumer._thread  # noqa: SLF001
        head = await thread.call_thread(ask, thread._ensure_consumer())  # noqa: SLF001
        if consumer._committed_offset[tp] is None:  # noqa: SLF001
            _starts[key] = head
    except Exception as error:  # the next commit asks again
        log.warning("commit_head_lookup_failed", tp=str(tp), error=str(error))
    finally:
        _looking.discard(key)


async def _seek_to_committed(self: Any) -> Mapping[TopicPartition, int | None]:
    consumer = self._ensure_consumer()
    app = self.consumer.app
    changelogs = set(app.tables.changelog_topics)
    reset = app.conf.consumer_auto_offset_reset
    seek = functools.partial(seek_to_committed_or_beginning, changelogs=changelogs, reset=reset)
    return await self.call_thread(seek, consumer)  # type: ignore[no-any-return]


PARK_SECONDS = 1.5
"""The longest the end of a recovery waits for Faust's delivery loop to stop (a fetch in flight
ends within Faust's 1-s getmany timeout)."""


async def _perform_seek(self: Any) -> None:
    """The end of a table recovery without its race. Faust resumes the stream partitions, then
    seeks them to their committed offsets, then clears the streams' queues: its delivery loop,
    still going through a batch fetched after the resume, moved the read offsets past records
    that were then cleared unacked, and their re-read was dropped as already read (issue 12,
    item 2). Here the flow is stopped first and the seek waits until the delivery loop has
    parked, so no read offset moves after the seek; Faust resumes the flow right after it.
    Every other seek (the delivery loop's own, while the flow is stopped) is Faust's."""
    if self.flow_active and self.app.rebalancing:
        self.stop_flow()
        await parked(self)
        await read_changelogs_again(self)
    await _faust_perform_seek(self)


async def read_changelogs_again(consumer: Any) -> None:
    """Seek every changelog partition still being read back to the last record delivered.

    Stopping the flow makes Faust's delivery loop drop the rest of the batch it was going
    through, and at the end of a recovery that batch can hold standby changelog records: Faust
    resumes the standbys before it seeks the streams, and its seek covers only the streams. The
    standby went on reading after the dropped records, its copy missed them for good, and the
    worker that took the partition over when its owner died served those calls without them:
    stage 1 credited their events again (issue 13, rocksdb's double counts; test_race logs of
    2026-12-04 showed a standby fetch of offsets 418-691 delivered up to 480, and the next
    fetch starting at 692). Faust's read offset is the last record delivered, or where a seek
    put the partition (none: its beginning); the recovery skips a record it has already taken."""
    read = consumer._read_offset  # noqa: SLF001
    paused = consumer._paused_partitions  # noqa: SLF001
    for tp in consumer.assignment():
        if consumer._is_changelog_tp(tp) and tp not in paused:  # noqa: SLF001
            await consumer.seek(tp, read.get(tp) or 0)


async def parked(consumer: Any, limit: float = PARK_SECONDS) -> bool:
    """Wait until Faust's delivery loop waits for the flow to resume (False: `limit` passed)."""
    fetcher = consumer.app._fetcher  # noqa: SLF001
    if not fetcher.started or fetcher.should_stop:
        return True  # no delivery loop runs (Faust stops it at each rebalance)
    began = time.monotonic()
    while not _waiting_to_resume(consumer):
        if time.monotonic() - began > limit:
            log.warning("recovery_end_delivery_not_parked", seconds=limit)
            return False
        await asyncio.sleep(0.001)
    return True


def _waiting_to_resume(consumer: Any) -> bool:
    waiters = getattr(consumer.can_resume_flow, "_waiters", ())
    return any(not waiter.done() for waiter in waiters)


def head_is_missing(acked: list[int], committed: int | None) -> bool:
    """Whether the next offset to commit (`committed`, Kafka's "next to read") was never acked."""
    return bool(acked) and committed is not None and min(acked) > committed


def _new_offset(self: Any, tp: Any) -> int | None:
    committed = self._committed_offset[tp]
    held = _held.setdefault(self, {})
    if committed is None:  # Faust does not know it: never committed, or assigned again
        committed = _starts.get((tp.topic, tp.partition))
        if committed is None and self._acked[tp]:
            held.setdefault(tp, time.monotonic())
            _look_up_head(self, tp)
            return None
    # Faust's own gaps (offsets that never reach a stream) may be committed past, but only a
    # gap that holds the missing head itself: after a seek back, Faust's delivery loop can
    # record a gap from the offset *after* it (sigkill soak run 13 committed past one message).
    gap = self._gap[tp]
    if not (gap and gap.overlaps(committed)) and head_is_missing(self._acked[tp], committed):
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


# -- the persistent table store (CALLPULSE_AGGREGATOR_STORE=rocksdb) ---------------------------

ROCKSDB_URL = "callpulse-rocksdb://"
"""The `store` of the aggregator's app when its tables live in RocksDB (`RocksStore`)."""

ROCKSDB_OPTIONS = {"write_buffer_size": 4 * 2**20, "max_write_buffer_number": 2}
"""Per partition database (two tables x every partition a worker holds, actives and standbys,
8 databases per worker here): Faust's defaults, 3 x 64 MiB memtables and a 2 GiB block cache
each, would not stay within the worker's 1 GiB."""

BLOCK_CACHE_BYTES = 32 * 2**20
"""One block cache for all of a worker's databases (Faust opens one per database): the timers
read every rep and call, so 8 caches of 16 MiB filled up after the first sweep."""
MEMTABLE_BYTES = 32 * 2**20
"""The most all of a worker's memtables hold together (RocksDB's write buffer manager)."""


class SharedRocksDBOptions(faust_rocksdb.RocksDBOptions):
    """Faust's options, every database of the process sharing one block cache and one memtable
    budget (as Faust builds them, each database gets its own cache)."""

    cache: rocksdict.Cache | None = None
    memtables: rocksdict.WriteBufferManager | None = None

    def as_options(self) -> rocksdict.Options:
        """Faust's options with the shared cache and write buffer manager."""
        cls = SharedRocksDBOptions
        if cls.cache is None or cls.memtables is None:
            cls.cache = rocksdict.Cache(BLOCK_CACHE_BYTES)
            cls.memtables = rocksdict.WriteBufferManager(MEMTABLE_BYTES, False)
        options: rocksdict.Options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(cls.cache)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(cls.memtables)
        return options


class RocksStore(faust_rocksdb.Store):
    """Faust's RocksDB store (rocksdict), made right for this driver, which writes the tables'
    dicts itself and sends their changelog records through its own outbox:

    - A key's database is its changelog partition (`partition_for`, as the outbox routes it),
      not the partition of whichever event happens to be current (Faust's `_set` asserts a
      current event, which batches and timers do not have).
    - Writes are held in memory and reach RocksDB only once their changelog records are
      confirmed in Kafka, together with the changelog offset to replay from (`checkpoint`, run
      before each commit of offsets). A killed worker's database is therefore never ahead of
      its changelog: the restart replays the changelog from that offset, as a memory store
      replays it from the beginning.
    """

    def __init__(self, url: Any, app: Any, table: Any, **kwargs: Any) -> None:
        options = {**ROCKSDB_OPTIONS, **(kwargs.pop("options", None) or {})}
        super().__init__(url, app, table, options=options, **kwargs)
        self.rocksdb_options = SharedRocksDBOptions(**(self.options or {}), use_rocksdict=True)
        self.pending: dict[int, dict[bytes, bytes | None]] = {}
        """Writes since the last checkpoint, per partition (None: deleted)."""
        self.confirming: dict[int, dict[bytes, bytes | None]] = {}
        """Writes before the last checkpoint, written to RocksDB at the next one."""
        self.confirming_offsets: dict[int, int] = {}
        """Per partition: the changelog offset below which every record's write is held."""

    def _partition(self, key: bytes) -> int:
        count = self.__dict__.get("_count")
        if count is None:  # fixed for the worker's life (its topics are checked at start)
            count = self._count = self.table.partitions or self.app.conf.topic_partitions
        return partition_for(key, count)

    def _held(self, partition: int, key: bytes) -> tuple[bool, bytes | None]:
        for layer in (self.pending, self.confirming):
            writes = layer.get(partition)
            if writes is not None and key in writes:
                return True, writes[key]
        return False, None

    def _set(self, key: bytes, value: bytes | None) -> None:
        self.pending.setdefault(self._partition(key), {})[key] = value

    def _del(self, key: bytes) -> None:
        self.pending.setdefault(self._partition(key), {})[key] = None

    def _get(self, key: bytes) -> bytes | None:
        partition = self._partition(key)
        held, value = self._held(partition, key)
        if held:
            return value
        db = self._db(partition)
        return None if db is None else db.get(key)

    def _db(self, partition: int) -> Any:
        """The partition's database if it is this worker's to serve: opened now if Faust has
        not opened it yet (a partition assigned with nothing to recover, or kept as a standby
        before it became active, may have none open). Treating an unopened database as empty
        would start its reps and calls from nothing."""
        db = self._dbs.get(partition)
        if db is None and partition in self._active_partitions():
            db = self._db_for_partition(partition)
        return db

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None

    def _active_partitions(self) -> list[int]:
        """The changelog partitions this worker serves: every active one, whether or not
        its database is open yet (and, of a global table, every one it holds)."""
        topic = self.table.changelog_topic.get_topic_name()
        held = set(self._dbs) | set(self.pending) | set(self.confirming)
        if self.table.is_global:
            return sorted(held)
        actives = self.app.assignor.assigned_actives()
        return sorted({tp.partition for tp in actives if tp.topic == topic})

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        for partition in self._active_partitions():
            over = {**self.confirming.get(partition, {}), **self.pending.get(partition, {})}
            db = self._db(partition)
            if db is not None:
                for key, value in self._visible_items(db):
                    if key not in over:
                        yield key, value
            yield from ((key, value) for key, value in over.items() if value is not None)

    def _iterkeys(self) -> Iterator[bytes]:
        for partition in self._active_partitions():  # keys only: values stay on disk
            over = {**self.confirming.get(partition, {}), **self.pending.get(partition, {})}
            db = self._db(partition)
            if db is not None:
                yield from (key for key in self._visible_keys(db) if key not in over)
            yield from (key for key, value in over.items() if value is not None)

    def _itervalues(self) -> Iterator[bytes]:
        return (value for _, value in self._iteritems())

    def _size(self) -> int:
        # list(table.keys()) asks the size first: counting the items read every value from disk
        return sum(1 for _ in self._iterkeys())

    def revoke_partitions(self, table: Any, tps: Any) -> None:
        """Forget held writes of revoked partitions: their changelog has them, and a worker
        that gets one back replays it from the offset its database holds."""
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._forget_held(tp.partition)
        super().revoke_partitions(table, tps)

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        """Also forget held writes of partitions kept only as standbys now. Faust revokes
        nothing when an active partition becomes a standby (its changelog partition is still
        assigned), but the new owner writes it from now on and the standby copy follows its
        records: held writes of ours would be served over them if the partition came back
        before the next checkpoint (and that checkpoint would write them to disk)."""
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        active = set(self._active_partitions())
        for partition in set(self.pending) | set(self.confirming) | set(self.confirming_offsets):
            if partition not in active:
                self._forget_held(partition)

    def _forget_held(self, partition: int) -> None:
        self.pending.pop(partition, None)
        self.confirming.pop(partition, None)
        self.confirming_offsets.pop(partition, None)

    def checkpoint(self) -> None:
        """Write the writes held since the checkpoint before the last one (their records were
        confirmed by the commit this runs in) to RocksDB, each partition's in one atomic batch
        with the offset to replay from; then hold the writes since the last one.

        The offset is that of the last batch of the partition's changelog records Kafka has
        confirmed to this worker (`delivered`), taken with the writes: every such record was
        sent after its write, so a replay from there misses none of them, and it is at most
        the partition's end (an offset too low only replays more; none known: the database
        keeps the one it has). Until 2026-12-04 it was the partition's high watermark, asked
        of the broker through Faust's consumer thread: 0.2-2.9 s a commit under load, while
        stage 1 waited for records (`docs/decisions/faust-offsets.md`, session 16). Only
        partitions still active are written: one kept now as a standby gets the new owner's
        records from the changelog, which an older write of ours must not overwrite."""
        topic = self.table.changelog_topic.get_topic_name()
        actives = self.app.assignor.assigned_actives()
        for partition, writes in self.confirming.items():
            db = self._dbs.get(partition)
            if db is None or TP(topic, partition) not in actives:
                continue  # moved away, or now a standby: its copy comes from the changelog
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in writes.items():
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            offset = self.confirming_offsets.get(partition)
            if offset is not None:
                batch.put(self.offset_key, str(offset).encode())
            db.write(batch)
        self.confirming, self.confirming_offsets = {}, {}
        self.pending = {p: w for p, w in self.pending.items() if TP(topic, p) in actives}
        if not self.pending:
            return
        delivered = _delivered.get(self.app, {})
        self.confirming, self.pending = self.pending, {}
        self.confirming_offsets = {
            p: delivered[topic, p] for p in self.confirming if (topic, p) in delivered
        }


_delivered: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], int]] = weakref.WeakKeyDictionary()
"""Per app: (topic, partition) -> the base offset of the last record batch Kafka confirmed."""


def delivered(app: Any, results: Iterable[Any]) -> None:
    """Note what Kafka confirmed to the app's producer (aiokafka `RecordMetadata`s of record
    batches; anything else is skipped): `RocksStore.checkpoint` takes its changelogs' offsets
    from here instead of asking the broker."""
    known = _delivered.setdefault(app, {})
    for result in results:
        offset = getattr(result, "offset", None)
        if isinstance(offset, int) and offset >= 0:
            key = (result.topic, result.partition)
            known[key] = max(offset, known.get(key, -1))


def partitioned(table: Any) -> bool:
    """Whether a table's store keeps each partition apart and serves only the active ones
    (`RocksStore`): a partition that moved away needs nothing dropped from it."""
    return isinstance(table.data, RocksStore)


async def checkpoint_stores(consumer: Any) -> None:
    """Before a commit of offsets, once every record sent is confirmed: `RocksStore.checkpoint`
    for each table kept in RocksDB."""
    for table in consumer.app.tables.values():
        store = table.data
        if isinstance(store, RocksStore):
            store.checkpoint()


def register_stores() -> None:
    """Make `ROCKSDB_URL` name `RocksStore` in Faust's registry of stores."""
    faust_stores.STORES.aliases[ROCKSDB_URL.split(":", 1)[0]] = f"{__name__}:RocksStore"
