"""The Faust compatibility module refuses versions and internals it was not checked against."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP

from services.aggregator import faust_compat


def test_the_pinned_versions_pass() -> None:
    assert faust_compat.problems() == []
    faust_compat.check()


def test_another_faust_version_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "0.16.0" if name == "faust-streaming" else real(name),
    )
    with pytest.raises(faust_compat.IncompatibleFaust, match=r"faust-streaming 0\.16\.0"):
        faust_compat.check()


def test_a_patched_method_that_disappeared_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(Consumer, "_new_offset")
    with pytest.raises(faust_compat.IncompatibleFaust, match="_new_offset is gone"):
        faust_compat.check()


def test_the_worker_refuses_to_start_with_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.aggregator import app
    from services.aggregator.config import AggregatorSettings

    monkeypatch.setattr(faust_compat, "SUPPORTED", {"aiokafka": ("9.9.9",)})
    with pytest.raises(SystemExit) as stopped:  # before any broker is asked (none listens here)
        app.run_worker(AggregatorSettings(KAFKA_BOOTSTRAP="127.0.0.1:1"))
    assert str(stopped.value).startswith("callpulse aggregator: ")
    assert "aiokafka 0.14.0 is installed" in str(stopped.value)


async def test_a_held_commit_is_measured_until_the_missing_message_is_processed() -> None:
    from types import SimpleNamespace

    from aiokafka import TopicPartition
    from intervaltree import IntervalTree  # type: ignore[import-untyped]

    tp = TopicPartition("events", 2)
    sought: list[int] = []

    async def seek(partition: TopicPartition, offset: int) -> None:
        sought.append(offset)

    class FakeConsumer:  # the state Faust's Consumer keeps, as its __init__ sets it
        def __init__(self) -> None:
            self._committed_offset = {tp: 212}
            self._gap = {tp: IntervalTree()}
            self._acked = {tp: [213, 214]}
            self._acked_index = {tp: {213, 214}}
            self.seek = seek

    consumer = FakeConsumer()
    app = SimpleNamespace(_consumer=consumer)
    assert faust_compat._new_offset(consumer, tp) is None  # noqa: SLF001 - the patch itself
    await asyncio.sleep(0)
    assert sought == [212]  # read again from the missing message
    assert set(faust_compat.held_commits(app)) == {("events", 2)}
    consumer._acked[tp] = [212, 213, 214]  # noqa: SLF001
    consumer._acked_index[tp] = {212, 213, 214}  # noqa: SLF001
    assert faust_compat._new_offset(consumer, tp) == 215  # noqa: SLF001 - Faust's answer again
    assert faust_compat.held_commits(app) == {}


@pytest.mark.parametrize(("gap", "held"), [((213, 220), True), ((212, 220), False)])
async def test_a_gap_faust_records_after_the_missing_head_does_not_release_the_commit(
    gap: tuple[int, int], held: bool
) -> None:
    """Faust records a gap from the offset after the one a seek went back to (its delivery loop
    going on with a batch fetched before the seek): the commit stays held on the missing 212.
    Only a gap holding 212 itself (offsets that never reach a stream) lets Faust commit past."""
    from aiokafka import TopicPartition
    from intervaltree import IntervalTree

    tp = TopicPartition("events", 2)

    async def seek(partition: TopicPartition, offset: int) -> None:
        return None

    class FakeConsumer:  # the state Faust's Consumer keeps, as its __init__ sets it
        def __init__(self) -> None:
            self._committed_offset = {tp: 212}
            self._gap = {tp: IntervalTree.from_tuples([gap])}
            self._acked = {tp: [220, 221]}
            self._acked_index = {tp: {220, 221}}
            self.seek = seek

    consumer = FakeConsumer()
    new = faust_compat._new_offset(consumer, tp)  # noqa: SLF001 - the patch itself
    await asyncio.sleep(0)  # the seek back, when held
    assert (new is None) is held
    if not held:
        assert new == 222  # Faust's own answer: the gap counts as done


async def test_a_partition_faust_has_no_committed_offset_for_holds_on_its_missing_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust forgets committed offsets at every revocation, and knows none for a partition never
    committed: it then commits from the first acked offset, past anything lost before it. The
    hold asks the group coordinator for the head first (the commit waits), then holds on it."""
    from aiokafka import TopicPartition
    from intervaltree import IntervalTree

    tp = TopicPartition("reassigned-events", 0)
    key = ("reassigned-events", 0)
    sought: list[int] = []
    asked: list[TopicPartition] = []

    async def seek(partition: TopicPartition, offset: int) -> None:
        sought.append(offset)

    class Coordinator:  # the aiokafka consumer, in Faust's consumer thread
        async def committed(self, partition: TopicPartition) -> int | None:
            asked.append(partition)
            return 10

    class Thread:
        def _ensure_consumer(self) -> Coordinator:
            return Coordinator()

        async def call_thread(self, fun: Any, *args: Any) -> Any:
            return await fun(*args)

    class FakeConsumer:
        def __init__(self) -> None:
            self._committed_offset: dict[Any, int | None] = {tp: None}
            self._gap = {tp: IntervalTree()}
            self._acked = {tp: [11, 12]}
            self._acked_index = {tp: {11, 12}}
            self._thread = Thread()
            self.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset="earliest"))
            self.seek = seek

    consumer = FakeConsumer()
    monkeypatch.delitem(faust_compat._starts, key, raising=False)  # noqa: SLF001
    assert faust_compat._new_offset(consumer, tp) is None  # noqa: SLF001 - held while asking
    await until(lambda: key in faust_compat._starts)  # noqa: SLF001
    assert asked == [tp]
    assert faust_compat._starts[key] == 10  # noqa: SLF001
    assert faust_compat._new_offset(consumer, tp) is None  # noqa: SLF001 - 10 is missing
    await asyncio.sleep(0)
    assert sought == [10]
    consumer._acked[tp] = [10, 11, 12]  # noqa: SLF001
    consumer._acked_index[tp] = {10, 11, 12}  # noqa: SLF001
    assert faust_compat._new_offset(consumer, tp) == 13  # noqa: SLF001 - Faust's answer again
    monkeypatch.delitem(faust_compat._starts, key)  # noqa: SLF001


async def test_take_batches_fills_the_next_batch_while_one_is_processed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's real stream and agent on an in-memory channel: events that arrive while a batch
    is processed make the next batch (at most `size`), in order, and each batch is acked only
    after its processing; a batch whose processing raised is never acked."""
    import faust
    from faust.streams import Stream

    acked: list[bytes] = []
    real_ack = Stream.ack

    async def ack(self: Stream[Any], event: Any) -> bool:
        acked.append(event.value)
        return await real_ack(self, event)

    monkeypatch.setattr(Stream, "ack", ack)
    app = faust.App("take-batches-test", store="memory://", value_serializer="raw")
    batches: list[list[bytes]] = []
    release = asyncio.Event()

    @app.agent()
    async def agent(stream: Any) -> None:
        async for batch in faust_compat.take_batches(stream, 3):
            batches.append([event.value for event in batch])
            if len(batches) == 1:
                await release.wait()
            if b"boom" in batches[-1]:
                raise RuntimeError("a batch that fails")

    async with agent.test_context() as running:
        puts = [asyncio.ensure_future(running.put(str(i).encode())) for i in range(8)]
        await asyncio.gather(*puts)
        await asyncio.sleep(0.2)
        assert batches == [[b"0", b"1", b"2"]]  # the first one held: nothing else taken
        assert acked == []
        release.set()
        await until(lambda: len(batches) == 3)
        assert batches[1:] == [[b"3", b"4", b"5"], [b"6", b"7"]]
        await until(lambda: len(acked) == 8)
        assert acked == [str(i).encode() for i in range(8)]
        await running.put(b"boom")
        await until(lambda: len(batches) == 4)
        await asyncio.sleep(0.2)
        assert b"boom" not in acked


async def until(done: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the time given")


async def test_take_batches_takes_everything_already_delivered_in_one_batch() -> None:
    """Faust's drainer adds one event per turn of the loop; a batch taken at the first event
    would be of a few events however many wait (the worker then fell behind at 500/s)."""
    import faust

    app = faust.App("take-batches-drain-test", store="memory://", value_serializer="raw")
    sizes: list[int] = []

    @app.agent()
    async def agent(stream: Any) -> None:
        async for batch in faust_compat.take_batches(stream, 100):
            sizes.append(len(batch))

    async with agent.test_context() as running:
        await asyncio.gather(*(running.put(str(i).encode()) for i in range(50)))
        await until(lambda: sum(sizes) == 50)
        assert sizes == [50]


class _FakeDB(dict[bytes, bytes]):
    """What `RocksStore` asks of a rocksdict database: get, keys, items and an iterator."""

    def iter(self) -> Any:
        return SimpleNamespace(seek_to_first=lambda: None)


def _rocks_store(on_disk: dict[int, dict[bytes, bytes]], actives: set[int]) -> Any:
    """A `RocksStore` over fake databases (one per changelog partition, not open yet), with
    `actives` the changelog partitions assigned to this worker as active."""
    from faust.types import TP

    store = object.__new__(faust_compat.RocksStore)
    topic = "app-reps-changelog"
    store.table = SimpleNamespace(
        partitions=4,
        is_global=False,
        changelog_topic=SimpleNamespace(get_topic_name=lambda: topic, topics={topic}),
    )
    assigned = {TP(topic, p) for p in actives}
    store.app = SimpleNamespace(
        assignor=SimpleNamespace(assigned_actives=lambda: assigned),
        conf=SimpleNamespace(topic_partitions=4),
    )
    store._dbs, store.pending, store.confirming = {}, {}, {}
    store.use_rocksdict = True
    store._open_for_partition = lambda partition: _FakeDB(on_disk.get(partition, {}))
    return store


def test_a_rocksdb_partition_not_opened_yet_is_read_from_disk_not_taken_as_empty() -> None:
    """Soak run 59 of 2026-12-03 (rocksdb, both workers restarted after a broker restart):
    reps showed a third of their counts. A database Faust had not opened (nothing to recover,
    or a standby become active) was served as empty: its reps started again from nothing, and
    the refresh, listing only open databases, never republished them."""
    from services.kit.partitioning import partition_for

    key = next(k for k in (f"r{n}".encode() for n in range(100)) if partition_for(k, 4) == 2)
    other = next(k for k in (f"r{n}".encode() for n in range(100)) if partition_for(k, 4) == 3)
    store = _rocks_store({2: {key: b"state"}, 3: {other: b"theirs"}}, actives={2})
    # the store's own read and listing, as the table's dict calls them
    assert store._get(key) == b"state"  # noqa: SLF001
    assert list(store._iterkeys()) == [key]  # noqa: SLF001
    assert store._get(other) is None  # noqa: SLF001  (partition 3 is not ours: never served)
    assert 3 not in store._dbs  # noqa: SLF001


async def test_held_writes_of_a_partition_that_became_a_standby_are_not_served_later() -> None:
    """An active partition that becomes a standby is not revoked (its changelog partition is
    still assigned), so its held writes used to stay: had it come back before the next
    checkpoint, they were served over the records the owner in between wrote (stale calls),
    and that checkpoint wrote them to disk. Held writes of a partition that stays active are
    kept: nobody else wrote it in between."""
    from services.kit.partitioning import partition_for

    def key_in(partition: int) -> bytes:
        return next(
            k for k in (f"c{n}".encode() for n in range(100)) if partition_for(k, 4) == partition
        )

    moved, kept = key_in(1), key_in(2)
    store = _rocks_store({1: {moved: b"owner's newer state"}}, actives={1, 2})
    store.db_lock = asyncio.Lock()
    store.app.assignor.assigned_standbys = set
    store._set(moved, b"ours, held")  # noqa: SLF001
    store._set(kept, b"ours, held too")  # noqa: SLF001
    store.confirming_offsets = {1: 7, 2: 9}

    store.app.assignor.assigned_actives = lambda: {TP("app-reps-changelog", 2)}  # 1: a standby
    await store.on_rebalance(set(), set(), set())
    store.app.assignor.assigned_actives = lambda: {  # 1 comes back before any checkpoint
        TP("app-reps-changelog", 1),
        TP("app-reps-changelog", 2),
    }

    assert store._get(moved) == b"owner's newer state"  # noqa: SLF001
    assert store._get(kept) == b"ours, held too"  # noqa: SLF001
    assert store.confirming_offsets == {2: 9}


class _App:
    """A stand-in app (weakly referenced, as Faust's is, by what the driver notes of it)."""

    def __init__(self, actives: set[TP]) -> None:
        self.assignor = SimpleNamespace(assigned_actives=lambda: actives)
        self.conf = SimpleNamespace(topic_partitions=4)


def test_a_checkpoint_takes_the_changelog_offsets_kafka_confirmed_not_the_brokers() -> None:
    """Each checkpoint used to ask the broker for the changelog partitions' high watermarks
    through Faust's consumer thread: 0.2-2.9 s a commit while a worker drained a backlog, and
    stage 1 got no records meanwhile. The offset to replay from is now the last changelog
    batch Kafka confirmed to this worker, noted when the driver awaits its sends; a partition
    with none noted keeps the offset its database has."""
    from services.kit.partitioning import partition_for

    def key_in(partition: int) -> bytes:
        return next(
            k for k in (f"c{n}".encode() for n in range(100)) if partition_for(k, 4) == partition
        )

    store = _rocks_store({}, actives={1, 2})
    topic = "app-reps-changelog"
    store.app = _App({TP(topic, 1), TP(topic, 2)})
    store._set(key_in(1), b"one")  # noqa: SLF001
    store._set(key_in(2), b"two")  # noqa: SLF001
    confirmed = SimpleNamespace(topic=topic, partition=1, offset=41)
    older = SimpleNamespace(topic=topic, partition=1, offset=7)
    elsewhere = SimpleNamespace(topic="app-calls-changelog", partition=2, offset=99)
    faust_compat.delivered(store.app, [confirmed, older, elsewhere, RuntimeError("failed")])

    store.checkpoint()  # no consumer to ask the broker through

    assert store.confirming == {1: {key_in(1): b"one"}, 2: {key_in(2): b"two"}}
    assert store.confirming_offsets == {1: 41}
    assert store.pending == {}


def test_a_rocksdb_table_is_read_and_written_as_bytes_without_fausts_serializers() -> None:
    """`table_data` gives the driver a RocksDB table's store as a dict of bytes: a miss is
    None (no KeyError raised and caught), writes are held like Faust's own, deletes too."""
    from services.kit.partitioning import partition_for

    key = next(k for k in (f"c{n}".encode() for n in range(100)) if partition_for(k, 4) == 2)
    other = next(k for k in (f"c{n}".encode() for n in range(100)) if partition_for(k, 4) == 1)
    store = _rocks_store({2: {key: b"on disk"}}, actives={1, 2})
    data = faust_compat.table_data(SimpleNamespace(data=store))
    assert isinstance(data, faust_compat.RawRocks)
    assert data.get(key) == b"on disk"
    assert data.get(other) is None
    data[other] = b"new"
    assert store.pending == {1: {other: b"new"}}
    assert sorted(data) == sorted([key, other])
    assert dict(data.items()) == {key: b"on disk", other: b"new"}
    assert data.pop(key, None) == b"on disk"
    assert data.get(key) is None
    assert data.pop(key, None) is None
    assert list(data) == [other]


@pytest.fixture
def recovery_log() -> Iterator[logging.Logger]:
    """The recovery logger with no watch on it (conftest.py puts back what was there)."""
    logger = logging.getLogger(faust_compat.RECOVERY_LOGGER)
    root = logging.getLogger().level
    logger.filters.clear()  # a worker built by another test watches this logger too
    try:
        yield logger
    finally:
        logging.getLogger().setLevel(root)


def test_a_failure_faust_recovery_swallows_stops_the_worker(recovery_log: logging.Logger) -> None:
    """Faust's changelog reader catches any exception, logs it and signals the end of recovery:
    the agents would start on tables missing records and count calls again as new ones."""
    stopped: list[str] = []
    logging.getLogger().setLevel(logging.ERROR)  # a quiet worker still hears of it
    faust_compat.on_recovery_failure(stopped.append)

    recovery_log.info("Recovery complete")
    recovery_log.warning("No event received for active tp in the last 30.0 seconds")
    assert stopped == []
    recovery_log.warning(f"Error in recovery {OSError('IO error: lock hold by current process')}")
    recovery_log.warning("recovery unknown topic TP(topic='x', partition=1) offset 7")
    assert stopped == [
        "Error in recovery IO error: lock hold by current process",
        "recovery unknown topic TP(topic='x', partition=1) offset 7",
    ]


def test_a_faust_that_no_longer_logs_those_failures_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = inspect.getsource
    monkeypatch.setattr(
        faust_compat.inspect,
        "getsource",
        lambda obj: source(obj).replace("Error in recovery", "Recovery failed"),
    )
    assert "faust Recovery no longer logs 'Error in recovery'" in faust_compat.problems()


def test_a_resume_keeps_the_changelog_records_already_fetched() -> None:
    """Recovery resumes the flow after standbys began reading: their fetched records must stay
    queued (dropped, the standby copy missed them for good), while the agents' queues are
    still cleared on resume and every queue on an explicit clear (the rebalance path)."""
    import faust

    app = faust.App("resume-test", store="memory://", value_serializer="raw")
    faust_compat.keep_changelog_reads_on_resume(app)
    changelogs = app.tables.changelog_queue
    stream = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
    changelogs.put_nowait("changelog record")
    stream.put_nowait("event")
    app.flow_control.suspend()
    app.flow_control.resume()
    assert (changelogs.qsize(), stream.qsize()) == (1, 0)
    assert app.flow_control.is_active()
    app.flow_control.clear()
    assert changelogs.qsize() == 0


async def test_stopping_the_flow_at_the_end_of_a_recovery_reads_standby_changelogs_again() -> None:
    """The delivery loop drops the rest of its batch when the flow stops; a changelog partition
    being read (a resumed standby) goes back to the last record delivered, or to its beginning
    when none was delivered since a seek to it. Paused changelogs and streams are left alone."""
    from collections import defaultdict

    standby, fresh = TP("agg-calls-changelog", 1), TP("agg-calls-changelog", 3)
    active, stream = TP("agg-calls-changelog", 0), TP("events", 0)
    sought: dict[TP, int] = {}

    class FakeConsumer:  # the state Faust's Consumer keeps
        def __init__(self) -> None:
            self._read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
            self._read_offset.update({standby: 480, active: 900, stream: 77})
            self._paused_partitions = {active}

        def assignment(self) -> set[TP]:
            return {standby, fresh, active, stream}

        def _is_changelog_tp(self, tp: TP) -> bool:
            return tp.topic.endswith("-changelog")

        async def seek(self, tp: TP, offset: int) -> None:
            sought[tp] = offset

    await faust_compat.read_changelogs_again(FakeConsumer())
    assert sought == {standby: 480, fresh: 0}


async def test_the_worker_consumer_lets_the_broker_hold_a_fetch_only_as_long_as_configured(
    tmp_path: Any,
) -> None:
    """Faust builds its consumer with fetch_max_wait_ms=1500: a fetch in flight for partitions
    with nothing new kept stage 2's next facts waiting up to that long (session 21's trace)."""
    from services.aggregator.app import create_app
    from services.aggregator.config import AggregatorSettings

    settings = AggregatorSettings(
        APP_ID="test-fetch-wait", DATA_DIR=str(tmp_path), FETCH_MAX_WAIT_MS=120
    )
    app = create_app(settings)
    thread = app.consumer._thread  # noqa: SLF001
    consumer = thread._create_worker_consumer(app.transport)  # noqa: SLF001
    assert consumer._fetch_max_wait_ms == 120  # noqa: SLF001
    assert AggregatorSettings().FETCH_MAX_WAIT_MS == 100


def test_an_aiokafka_that_no_longer_hands_the_fetch_wait_to_its_fetcher_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiokafka import AIOKafkaConsumer

    async def start(self: Any) -> None:  # a start that builds its fetcher some other way
        return None

    monkeypatch.setattr(AIOKafkaConsumer, "start", start)
    with pytest.raises(faust_compat.IncompatibleFaust, match="_fetch_max_wait_ms"):
        faust_compat.check()
