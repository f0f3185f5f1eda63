"""Stage 1 -> stage 2 packing and the compact encoder of table values."""

from __future__ import annotations

from datetime import UTC, datetime

from services.aggregator.domain.calls import CallState, apply_event
from services.aggregator.packing import SentPacks, dumps, encode, grouped, loads, unpack
from services.kit.partitioning import partition_for
from tests.unit.aggregator.events import full_call
from tests.unit.aggregator.floor import Floor

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


def test_pack_routes_each_fact_to_its_reps_partition_in_order() -> None:
    facts = _floor_facts()
    packed = {p: encode(group) for p, group in grouped(facts, 4).items()}
    seen = []
    for partition, message in packed.items():
        for fact, arrived in unpack(message):
            assert partition_for(fact.rep_id.encode(), 4) == partition
            seen.append((fact, arrived))
    assert sorted(seen, key=lambda x: x[0].fact_id) == sorted(facts, key=lambda x: x[0].fact_id)
    for partition, message in packed.items():  # a call's versions keep their order
        ids = [fact.fact_id for fact, _ in unpack(message)]
        mine = [
            fact.fact_id for fact, _ in facts if partition_for(fact.rep_id.encode(), 4) == partition
        ]
        assert ids == mine


def test_an_alert_tick_left_by_an_older_worker_holds_no_facts() -> None:
    assert list(unpack(dumps({"tick": 1, "rep_id": "r1"}))) == []


def test_a_call_state_survives_its_compact_encoding() -> None:
    floor = Floor()
    for event in full_call("c1", "r1", T0, talk=61.5, outcome="sale", amount="199.90"):
        floor.apply(event, T0)
    state = floor.calls["c1"]
    assert CallState.from_dict(loads(dumps(state.fields()))) == state


def test_stage_2_takes_the_packs_its_worker_sent_from_memory_and_decodes_the_rest() -> None:
    facts = _floor_facts()
    packs = {p: (encode(group), group) for p, group in grouped(facts, 4).items()}
    sent = SentPacks(limit=len(facts) - len(packs[0][1]))  # room for all but one pack
    for value, group in packs.values():
        sent.keep(value, group)
    first, *rest = packs.values()  # the oldest kept went out first
    for value, group in rest:
        taken = sent.unpack(value)
        assert taken is group  # the objects stage 1 made: no decoding
        assert sent.unpack(value) == list(unpack(value))  # read again: decoded
    assert sent.unpack(first[0]) == list(unpack(first[0])) == first[1]
