"""Stage 1's sweep looks only at the calls its index says are due: it must act on exactly the
calls a scan of every held call would (closing, forgetting, dropping), whatever the order of
events, arrivals, sweeps and invalidations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregator.core import CallBatch
from services.aggregator.domain.calls import Rules
from services.aggregator.due import WALL, DueIndex
from tests.unit.aggregator.events import ev
from tests.unit.aggregator.floor import Floor

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
RULES = Rules(max_call_seconds=900, call_retention_seconds=600, forgotten_retention_seconds=1200)
KINDS = ("call.started", "call.answered", "call.ended", "call.outcome")

step = st.one_of(
    st.tuples(
        st.just("event"),
        st.integers(0, 7),  # call
        st.sampled_from(KINDS),
        st.integers(0, 3),  # partition
        st.integers(-600, 600),  # arrival delay (negative: occurred "in the future")
    ),
    st.tuples(st.just("sweep"), st.integers(0, 3), st.booleans()),  # caught_up partition
    st.tuples(st.just("invalidate")),
    st.tuples(st.just("wait"), st.sampled_from([1, 30, 120, 300, 600, 661, 900, 1861])),
    st.tuples(st.just("wait"), st.integers(1, 2000)),
)


def _acted_on(batch: CallBatch) -> dict[str, object]:
    return {call_id: None if s is None else s.stored() for call_id, s in batch.states.items()}


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=10, max_size=80))
def test_the_indexed_sweep_acts_on_the_calls_a_full_scan_would(steps: list[tuple]) -> None:
    floor = Floor(rules=RULES)
    calls = floor.core.calls
    now = T0
    for number, (kind, *args) in enumerate(steps):
        if kind == "wait":
            now += timedelta(seconds=args[0])
        elif kind == "invalidate":
            calls.invalidate()
        elif kind == "event":
            call, type_, partition, delay = args
            fields = {"rep_id": "r1"}
            if type_ == "call.ended":
                fields["end_status"] = "completed"
            if type_ == "call.outcome":
                fields["outcome"] = "sale"
            event = ev(type_, f"c{call}", now, event_id=f"e{number}", **fields)
            arrived = (now + timedelta(seconds=delay)).timestamp()
            batch = calls.assemble([(event, arrived, partition)])
            floor.core.reps.accumulate(batch.facts, now)
            calls.save(batch)
        else:
            partition, caught_up = args
            if caught_up:
                calls.caught_up(partition, now.timestamp())
            everything = [key.decode() for key in calls.store.stored_keys()]
            scanned = calls.expire(everything, now, now.timestamp())
            indexed = calls.expire(calls.due(now), now, now.timestamp())
            assert _acted_on(indexed) == _acted_on(scanned)
            calls.save(indexed)


def test_a_build_interrupted_by_an_invalidation_is_abandoned_and_redone() -> None:
    floor = Floor(rules=RULES)
    calls = floor.core.calls
    for n in range(1_200):  # three slices of stored calls
        event = ev("call.started", f"c{n}", T0, rep_id="r1")
        calls.save(calls.assemble([(event, T0.timestamp(), 0)]))
    calls.invalidate()
    late = T0 + timedelta(seconds=RULES.max_call_seconds + 1)
    sweep = calls.due_slices(late)
    assert next(sweep) == []  # the first slice read
    calls.invalidate()  # e.g. a rebalance while the sweep let the agents run
    assert list(sweep) == []  # abandoned: nothing found from a half-read store
    assert len(calls.due(late)) == 1_200  # the next sweep reads them all again


def test_outdated_entries_go_when_their_minute_comes_up() -> None:
    due = {b"c1": (0, 30_000.0)}
    index = DueIndex()
    for minute in range(1, 501):  # saved again and again, each time due a minute later
        index.note(b"c1", (0, minute * 60.0))
    index.note(b"c2", (WALL, 100.0))
    assert len(index) == 501
    assert index.candidates(0.0, {0: 29_999.0}, due.get) == []  # c2's clock (the wall) is 0
    assert len(index) == 2  # the 499 outdated entries of c1 went
    assert index.candidates(100.0, {0: 30_000.0}, due.get) == [b"c1"]  # c2 is no longer held
    assert len(index) == 1  # c1 stays until a save moves it on
    assert index.candidates(1e12, {}, due.get) == []  # a partition with no clock has none due
