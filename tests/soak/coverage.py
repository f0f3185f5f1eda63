"""The offset-coverage oracle: what the workers' stages processed, against what the topics hold.

Workers run with `CALLPULSE_TEST_COVERAGE_DIR` append, before each commit of offsets, the
ranges their stages acked and the offsets they are about to commit
(`services/aggregator/testhooks.py`). Two checks:

- *holes*: every partition of the events and facts topics is covered from 0 to its end offset
  by the union of every process's acked ranges (an offset never processed is a lost event);
- *over-commits*: no commit moves past the first offset not processed by then (the ranges
  written before that commit, by any process: each writes its own before it commits).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

Key = tuple[str, int]


@dataclass
class Coverage:
    """Acked ranges (time, first, last) and commits (time, offset) per (topic, partition)."""

    acked: dict[Key, list[tuple[float, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    commits: dict[Key, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))


def read(folder: Path) -> Coverage:
    """Every process's records in `folder` (a torn last line of a killed process is skipped)."""
    found = Coverage()
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            at = float(record["t"])
            for topic, partition, first, last in record["acked"]:
                found.acked[(topic, partition)].append((at, first, last))
            for topic, partition, offset in record["commit"]:
                found.commits[(topic, partition)].append((at, offset))
    return found


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def _missing(ranges: list[tuple[int, int]], end: int) -> list[tuple[int, int]]:
    """The ranges of [0, end) not in `ranges` (inclusive bounds)."""
    holes, next_ = [], 0
    for first, last in _merged(ranges):
        if first > next_:
            holes.append((next_, min(first, end) - 1))
        next_ = max(next_, last + 1)
        if next_ >= end:
            break
    if next_ < end:
        holes.append((next_, end - 1))
    return [(a, b) for a, b in holes if a <= b and a < end]


def holes(coverage: Coverage, ends: dict[Key, int]) -> dict[Key, list[tuple[int, int]]]:
    """Per partition, the offset ranges below its end offset that no stage processed."""
    found = {}
    for key, end in ends.items():
        missing = _missing([(a, b) for _, a, b in coverage.acked.get(key, [])], end)
        if missing:
            found[key] = missing
    return found


def lost(found: dict[Key, list[tuple[int, int]]]) -> int:
    """How many offsets the holes hold."""
    return sum(b - a + 1 for ranges in found.values() for a, b in ranges)


def over_commits(coverage: Coverage) -> list[tuple[Key, int, int]]:
    """(partition, committed, first unprocessed then) for each commit that passed a hole."""
    found = []
    for key, commits in coverage.commits.items():
        acked = sorted(coverage.acked.get(key, []))
        seen: list[tuple[int, int]] = []
        i = 0
        for at, offset in sorted(commits):
            while i < len(acked) and acked[i][0] <= at:
                seen.append(acked[i][1:])
                i += 1
            seen = _merged(seen)
            first_unprocessed = seen[0][1] + 1 if seen and seen[0][0] == 0 else 0
            if offset > first_unprocessed:
                found.append((key, offset, first_unprocessed))
    return found


def end_offsets(bootstrap: str, topics: list[str]) -> dict[Key, int]:
    """Each partition's end offset now."""
    return asyncio.run(_end_offsets(bootstrap, topics))


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[Key, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(
                consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            )
        ]
        ends = await consumer.end_offsets(parts)
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()  # noqa: SLF001
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await asyncio.sleep(0.1)
    raise LookupError(f"no partitions for {topic}")


def check(
    folder: Path, bootstrap: str, topics: list[str]
) -> tuple[dict[Key, list[tuple[int, int]]], list[tuple[Key, int, int]]]:
    """(holes, over-commits) of a run whose workers wrote into `folder`."""
    coverage = read(folder)
    return holes(coverage, end_offsets(bootstrap, topics)), over_commits(coverage)
