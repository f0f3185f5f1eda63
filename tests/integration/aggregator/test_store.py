"""The rocksdb table store: a worker SIGKILLed mid-stream leaves databases that hold only what
its changelogs hold, and restarted on the same data dir it gives the reference KPIs.

Its databases are read after the kill (read-only, as the restarted worker would find them):
every value must be one the changelog received for that key (a database ahead of its changelog
would make a replay on another worker disagree with the restart), and the changelog offset
each holds must not pass its changelog's end."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rocksdict

from schemas.events import event_to_json
from services.aggregator.domain.reference import fold
from tests.e2e.scenario import midday_timezone
from tests.integration.aggregator.support import PARTITIONS, Deployment, read_records
from tests.integration.aggregator.test_workers import _latest, assert_converges, floor_log

pytestmark = pytest.mark.timeout(300)

OFFSET_KEY = b"__faust\0offset__"


def test_a_killed_worker_restarts_on_its_own_store_with_the_reference_kpis(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    deployment = Deployment(kafka_bootstrap, tmp_path, tz)
    deployment.env["CALLPULSE_AGGREGATOR_STORE"] = "rocksdb"  # the default, said in case it moves
    events = floor_log(seed=5, now=now, calls=400)
    rng = random.Random(3)
    stream = events + rng.sample(events, len(events) // 5)  # 20 % duplicates
    rng.shuffle(stream)
    items = [(e.call_id.encode(), event_to_json(e)) for e in stream]
    third = len(items) // 3

    with deployment.worker("w") as first:
        deployment.produce("events", items[:third])
        deadline = time.monotonic() + 60
        while not _latest(deployment) and time.monotonic() < deadline:
            time.sleep(1)
        # writes reach RocksDB at the second commit after them, and commits (2.8 s apart)
        # come with new offsets: more events until the databases hold some, then the rest and
        # a kill mid-stream
        deployment.produce("events", items[third : 2 * third])
        _wait_written(tmp_path / "w", items[2 * third :], deployment, seconds=60)
        deployment.produce("events", items[2 * third :])
        time.sleep(0.5)
        first.kill()
        first.wait()
    stores = _databases(tmp_path / "w")
    assert {(table, p) for table, p, _ in stores} >= {
        (table, p) for table in ("calls", "reps") for p in range(PARTITIONS)
    }
    checked = 0
    for table, partition, path in stores:
        changelog = _changelog(deployment, table, partition)
        held, offset = _read(path)
        assert offset is None or offset <= max(changelog["offsets"]), (table, partition, offset)
        for key, value in held.items():
            assert value in changelog["values"].get(key, ()), (table, partition, key)
            checked += 1
    assert checked > 0  # the worker had written its tables before the kill

    with deployment.worker("w"):  # the same data dir: it reads what was not committed
        want = fold(events, datetime.now(UTC), default_timezone=tz)
        assert_converges(deployment, want, seconds=120)


def _wait_written(
    data_dir: Path, items: list[tuple[bytes, bytes]], deployment: Deployment, *, seconds: float
) -> None:
    """Until a table database (read-only, beside the running worker) holds a value, sending
    the first of `items` again every second: commits only come with new offsets (a duplicate
    changes no KPI)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(_read(path)[0] for _, _, path in _databases(data_dir)):
            return
        deployment.produce("events", items[:1])
        time.sleep(1)
    raise AssertionError(f"no table database held a value within {seconds:.0f} s")


def _databases(data_dir: Path) -> list[tuple[str, int, Path]]:
    """(table, partition, path) of every table database under a worker's data dir."""
    out = []
    for path in data_dir.glob("*/tables/*.db"):
        table, _, partition = path.stem.rpartition("-")
        out.append((table, int(partition), path))
    return sorted(out)


def _changelog(deployment: Deployment, table: str, partition: int) -> dict[str, Any]:
    """Every value the changelog partition received per key, and its records' offsets."""
    topic = f"{deployment.run}-agg-{table}-changelog"
    values: dict[bytes, list[bytes | None]] = {}
    offsets = [-1]
    for record in asyncio.run(read_records(deployment.bootstrap, topic)):
        if record.partition == partition:
            values.setdefault(record.key, []).append(record.value)
            offsets.append(record.offset)
    return {"values": values, "offsets": offsets}


def _read(path: Path) -> tuple[dict[bytes, bytes], int | None]:
    """A database's keys and values, and the changelog offset it holds."""
    db = rocksdict.Rdict(
        str(path),
        options=rocksdict.Options(raw_mode=True),
        access_type=rocksdict.AccessType.read_only(),
    )
    try:
        held = {
            k: v
            for k, v in db.items()
            if isinstance(k, bytes) and isinstance(v, bytes) and k != OFFSET_KEY
        }
        offset = db.get(OFFSET_KEY)
        return held, None if offset is None else int(offset)
    finally:
        db.close()
