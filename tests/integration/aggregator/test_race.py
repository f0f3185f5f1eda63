"""The recovery race, widened on purpose, with the offset-coverage oracle (issue "Exact under
faults", deliverable 5).

Faust resumes the stream partitions at the end of a table recovery before it seeks them to
their committed offsets, then clears the streams' queues: records delivered in that window
were dropped unacked. `CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS` holds the window open for 1.5 s
in every recovery, while events keep arriving, and two workers rebalance twice (one joins, then
is SIGKILLed). With the fixes on, every offset of the events and facts topics is processed, no
commit passes an unprocessed offset, and every rep's KPIs equal the reference fold. With
`CALLPULSE_TEST_DISABLE_FIXES=1` (Faust as shipped) `make soak` shows the holes. On rocksdb the
survivor also serves b's partitions from its standby copies: stopping the flow at the end of a
recovery dropped standby records Faust never read again (`faust_compat.read_changelogs_again`).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.scenario import midday_timezone
from tests.integration.aggregator.test_workers import floor_log
from tests.soak.scenario import Run, stream_of

pytestmark = pytest.mark.timeout(180)


STORES = {
    "memory": {"CALLPULSE_AGGREGATOR_STORE": "memory"},
    # the survivor takes b's partitions over from its standby copies, which must miss no record
    "rocksdb": {"CALLPULSE_AGGREGATOR_STORE": "rocksdb", "CALLPULSE_STANDBY_REPLICAS": "1"},
}


@pytest.mark.parametrize("store", list(STORES))
def test_a_widened_recovery_race_loses_no_offset_and_the_kpis_are_exact(
    kafka_bootstrap: str, tmp_path: Path, store: str
) -> None:
    now = datetime.now(UTC)
    run = Run(
        kafka_bootstrap,
        tmp_path,
        midday_timezone(now),
        env={"CALLPULSE_TEST_WIDEN_RECOVERY_RACE_MS": "1500", **STORES[store]},
    )
    events = floor_log(seed=3, now=now, reps=40, calls=3000)
    items = stream_of(events, random.Random(3))
    tenth = len(items) // 10
    try:
        run.start("a")
        run.send(items[:tenth])
        b = run.start("b", wait=False)
        run.send(items[tenth : 5 * tenth])  # a backlog when b joins: both workers recover
        run.wait_ready(b)  # its recovery ended (and a's)
        time.sleep(2)
        run.kill("b")
        run.send(items[5 * tenth :])  # b's partitions wait for a with a backlog: a recovers
        result = run.converge(events, timeout=90)
        widened = run.fired("test_widening_recovery_race")
    finally:
        run.close()
    assert widened >= 3, "the race window was not widened in every recovery"
    assert result["lost_offsets"] == 0, result["holes"]
    assert result["over_commits"] == 0, result
    assert result["double_counts"] == 0, result
    assert result["converged"], result
