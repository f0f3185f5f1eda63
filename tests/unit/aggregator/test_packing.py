"""Stage 1 -> stage 2 packing, the compact encoder, call retention and the window plans."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiokafka.partitioner import DefaultPartitioner

from services.aggregator.domain.calls import CallState, Rules, apply_event, forgettable
from services.aggregator.domain.floor import Floor
from services.aggregator.domain.rep import window_plans
from services.aggregator.packing import dumps, loads, pack, unpack
from services.kit.partitioning import partition_for
from tests.unit.aggregator.events import ev, full_call

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _floor_facts() -> list:
    floor = Floor()
    facts = []
    for i in range(40):
        for event in full_call(
            f"c{i}", f"r{i % 7}", T0, talk=100 + i, outcome="sale", amount="9.5"
        ):
            step = apply_event(floor.calls.get(event.call_id), event, floor.rules)
            floor.calls[event.call_id] = step.state
            facts += [(fact, 1000.0 + i) for fact in step.facts]
    return facts


def test_partition_matches_kafkas_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for n in (1, 4, 12):
        for key in (b"alice", b"rep-0042", "李雷".encode()):
            assert partition_for(key, n) == partitioner(key, list(range(n)), list(range(n)))


def test_pack_routes_each_fact_to_its_reps_partition_in_order() -> None:
    facts = _floor_facts()
    packed = pack(facts, 4)
    seen = []
    for partition, message in packed.items():
        for fact, arrived in unpack(loads(message)):
            assert partition_for(fact.rep_id.encode(), 4) == partition
            seen.append((fact, arrived))
    assert sorted(seen, key=lambda x: x[0].fact_id) == sorted(facts, key=lambda x: x[0].fact_id)
    for partition, message in packed.items():  # a call's versions keep their order
        ids = [fact.fact_id for fact, _ in unpack(loads(message))]
        mine = [
            fact.fact_id for fact, _ in facts if partition_for(fact.rep_id.encode(), 4) == partition
        ]
        assert ids == mine


def test_unpack_reads_a_single_fact_from_an_older_worker() -> None:
    fact, _ = _floor_facts()[0]
    got = list(unpack(json.loads(json.dumps({**fact.to_dict(), "arrived": 5.0}))))
    assert got == [(fact, 5.0)]


def test_compact_encoding_is_the_same_json_as_to_dict() -> None:
    floor = Floor()
    for event in full_call("c1", "r1", T0, talk=61.5, outcome="sale", amount="199.90"):
        floor.apply(event, T0)
    state = floor.calls["c1"]
    assert loads(dumps(state.fields())) == json.loads(json.dumps(state.to_dict()))
    assert CallState.from_dict(loads(dumps(state.fields()))) == state


def test_an_ended_call_is_forgotten_after_the_retention_an_open_one_never() -> None:
    rules = Rules(call_retention_seconds=3600)
    floor = Floor(rules=rules)
    for event in full_call("done", "r1", T0, talk=60):
        floor.apply(event, T0)
    floor.apply(ev("call.started", "open", T0, rep_id="r1"), T0)
    last = floor.calls["done"].last_event_at
    assert last is not None
    assert not forgettable(floor.calls["done"], last + timedelta(minutes=59), rules)
    assert forgettable(floor.calls["done"], last + timedelta(minutes=61), rules)
    assert floor.forget_ended(last + timedelta(minutes=61)) == 1
    assert set(floor.calls) == {"open"}
    # the rep keeps what the forgotten call credited
    snap = floor.snapshot("r1", T0 + timedelta(hours=2))
    assert snap.windows["today"].dials == 2  # type: ignore[index]


def test_window_plans_change_with_the_minute_and_the_zone() -> None:
    ny, utc = ZoneInfo("America/New_York"), ZoneInfo("UTC")
    minute = int(T0.timestamp() // 60)
    a, b = window_plans(utc, minute), window_plans(utc, minute + 1)
    assert {p.window: p.minutes for p in a}["15m"] != {p.window: p.minutes for p in b}["15m"]
    assert {p.window: p.days for p in a}["today"] == frozenset({"2026-03-10"})
    late = int(datetime(2026, 3, 11, 3, 0, tzinfo=UTC).timestamp() // 60)  # 22:00 in New York
    assert {p.window: p.days for p in window_plans(ny, late)}["today"] == frozenset({"2026-03-10"})
