"""The offset-coverage oracle itself (tests/soak/coverage.py) on a real topic and the hook's
own recorder (services/aggregator/testhooks.py): it must see a hole and a commit past one,
or a clean race test would prove nothing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import NamedTuple

from services.aggregator.testhooks import Coverage
from services.kit.kafka import ensure_topics
from tests.integration.aggregator.support import _produce
from tests.soak import coverage


class TP(NamedTuple):
    topic: str
    partition: int


def test_the_oracle_finds_holes_and_commits_past_them_and_passes_full_coverage(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"coverage-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(kafka_bootstrap, [topic], partitions=1))
    asyncio.run(_produce(kafka_bootstrap, topic, [(b"k", b"%d" % i) for i in range(10)]))

    # one process acks 0-3 and commits 4, then 5-6 and (wrongly) commits 7: offset 4 was lost
    first = Coverage(tmp_path / "run")
    for offset in (0, 1, 2, 3):
        first.acked(topic, 0, offset)
    first.write({TP(topic, 0): 4})
    for offset in (5, 6):
        first.acked(topic, 0, offset)
    first.write({TP(topic, 0): 7})
    holes, over = coverage.check(tmp_path / "run", kafka_bootstrap, [topic])
    assert holes == {(topic, 0): [(4, 4), (7, 9)]}
    assert coverage.lost(holes) == 4
    assert over == [((topic, 0), 7, 4)]

    # a later process reads 4 and 7-9 again: covered to the end, the early commit stays wrong
    second = Coverage(tmp_path / "run")
    second.path = tmp_path / "run" / "second.jsonl"
    for offset in (4, 7, 8, 9):
        second.acked(topic, 0, offset)
    second.write({TP(topic, 0): 10})
    holes, over = coverage.check(tmp_path / "run", kafka_bootstrap, [topic])
    assert holes == {}
    assert over == [((topic, 0), 7, 4)]

    # clean: every commit at or below what was processed by then
    clean = Coverage(tmp_path / "clean")
    for offset in range(10):
        clean.acked(topic, 0, offset)
        if offset % 4 == 3:
            clean.write({TP(topic, 0): offset + 1})
    clean.write({TP(topic, 0): 10})
    assert coverage.check(tmp_path / "clean", kafka_bootstrap, [topic]) == ({}, [])
