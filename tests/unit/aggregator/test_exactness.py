"""Exact under redelivery: stage 2 is order-insensitive, late events count, replays never do.

Properties on the domain and the core (issue "Exact under faults", deliverable 1):
- facts of any calls, applied to a rep in any order and any number of times, give the buckets
  of applying each once in order;
- a call forgotten by stage 1 and then sent a late outcome or survey counts it beside what it
  had; its old events sent again (within the forgotten retention) count nothing; sent again
  after that, they go to history only (too late for the live windows) and count nothing live.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import CallEvent, CallOutcome, SurveyCompleted
from schemas.kpis import WINDOWS
from services.aggregator.domain.calls import (
    RepFact,
    Rules,
    apply_event,
    call_record,
    close_if_stale,
)
from services.aggregator.domain.reference import fold
from services.aggregator.domain.rep import RepState, apply_fact
from tests.unit.aggregator.events import ev, full_call
from tests.unit.aggregator.floor import Floor
from tests.unit.aggregator.test_properties import call_events

NOW = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
RULES = Rules(call_retention_seconds=600, forgotten_retention_seconds=86400)


@st.composite
def recent_calls(draw: st.DrawFn) -> list[list[CallEvent]]:
    """Calls whose events all occurred within the forgotten retention before NOW."""
    calls = []
    for index in range(draw(st.integers(1, 8))):
        events = draw(call_events(index))
        oldest = min((e.occurred_at for e in events), default=NOW)
        latest = max((e.occurred_at for e in events), default=NOW)
        # move the call to end 2-20 h before NOW (calls_events spreads them over 40 days)
        shift = NOW - timedelta(hours=draw(st.integers(2, 20))) - latest
        if oldest + shift < NOW - timedelta(hours=22):
            continue
        calls.append([e.model_copy(update={"occurred_at": e.occurred_at + shift}) for e in events])
    return calls


def _facts_in_order(calls: list[list[CallEvent]]) -> list[RepFact]:
    floor = Floor(rules=RULES)
    facts: list[RepFact] = []
    for events in calls:
        for event in events:
            facts += [fact for fact, _ in floor.apply(event, NOW).facts]
    return facts


def _buckets(facts: list[RepFact]) -> dict[str, tuple[object, ...]]:
    reps: dict[str, RepState] = {}
    for fact in facts:
        rep = reps.setdefault(fact.rep_id, RepState(fact.rep_id))
        apply_fact(rep, fact, ZoneInfo("Asia/Shanghai"), NOW)
    return {
        rep_id: (
            {k: v for k, v in rep.days.items() if any(v)},
            {k: v for k, v in rep.minutes.items() if any(v)},
            {k: v for k, v in rep.hours.items() if any(v)},
        )
        for rep_id, rep in reps.items()
    }


@settings(max_examples=150, deadline=None)
@given(recent_calls(), st.randoms(use_true_random=False), st.integers(0, 3))
def test_facts_in_any_order_and_repeated_give_the_in_order_buckets(
    calls: list[list[CallEvent]], rnd: random.Random, copies: int
) -> None:
    facts = _facts_in_order(calls)
    shuffled = facts + [rnd.choice(facts) for _ in range(copies * len(facts) // 2)]
    rnd.shuffle(shuffled)
    assert _buckets(shuffled) == _buckets(facts)


def _late(event: CallEvent) -> bool:
    return isinstance(event, CallOutcome | SurveyCompleted)


@st.composite
def late_scenarios(draw: st.DrawFn) -> tuple[list[CallEvent], list[CallEvent]]:
    """(events sent live, late events sent after their call was forgotten): a call's late
    events are its outcomes or its survey, when the live part has none of that kind and they
    name the rep it has (a late event counts on its own: it cannot move the call's old credit
    to another rep, nor correct an outcome or survey the forgotten call had)."""
    live: list[CallEvent] = []
    late: list[CallEvent] = []
    for events in draw(recent_calls()):
        held_back = draw(st.sampled_from(["none", "outcomes", "survey"]))
        if len({e.rep_id for e in events if e.rep_id is not None}) > 1:
            held_back = "none"
        for event in events:
            kind = "outcomes" if isinstance(event, CallOutcome) else "survey"
            (late if _late(event) and kind == held_back else live).append(event)
    return live, late


def _kpis(floor: Floor, now: datetime) -> dict[str, dict[str, dict[str, object]]]:
    out = {}
    for rep in sorted(floor.reps):
        snap = floor.snapshot(rep, now)
        out[rep] = {
            window: snap.windows[window].model_dump(  # type: ignore[index]
                exclude={"window", "window_start", "window_end"}
            )
            for window in WINDOWS
        }
    return out


def _expected(events: list[CallEvent], now: datetime) -> dict[str, dict[str, dict[str, object]]]:
    folded = fold(events, now, rules=RULES)
    return {
        rep: {w: dict(v) for w, v in windows.items()} for rep, windows in sorted(folded.items())
    }


@settings(max_examples=100, deadline=None)
@given(late_scenarios(), st.randoms(use_true_random=False))
def test_late_events_count_once_and_replays_never(
    scenario: tuple[list[CallEvent], list[CallEvent]], rnd: random.Random
) -> None:
    live, late = scenario
    floor = Floor(rules=RULES)
    for event in sorted(live, key=lambda e: e.occurred_at):
        floor.apply(event, event.occurred_at, arrived=event.occurred_at)
    # an hour after the last live event every call is forgotten (retention 10 min)
    swept = NOW - timedelta(hours=1)
    floor.forget_ended(swept)
    ended = {e.call_id for e in live if e.type == "call.ended"}
    assert all(floor.calls[call_id].forgotten for call_id in ended)
    # the late events arrive now, with every live event sent again (a sender's retry storm)
    resent = live + late + [rnd.choice(late) for _ in late]
    rnd.shuffle(resent)
    for event in resent:
        floor.apply(event, NOW, arrived=NOW)
    assert _kpis(floor, NOW) == _filled(_expected(live + late, NOW), floor)


def _filled(
    expected: dict[str, dict[str, dict[str, object]]], floor: Floor
) -> dict[str, dict[str, dict[str, object]]]:
    """Reps the floor holds that the fold gives nothing for: all zero, as a snapshot shows."""
    zero = {w: _kpis_of_nothing() for w in WINDOWS}
    return {rep: expected.get(rep, zero) for rep in sorted(floor.reps)}


def _kpis_of_nothing() -> dict[str, object]:
    from schemas.kpis import kpi_values

    return dict(
        kpi_values(
            dials=0,
            inbound_calls=0,
            connects=0,
            talk_seconds=0.0,
            conversations=0,
            conversions=0,
            revenue=0.0,
            csat_sum=0,
            csat_responses=0,
        )
    )


@settings(max_examples=50, deadline=None)
@given(recent_calls())
def test_old_events_sent_again_after_every_retention_go_to_history_only(
    calls: list[list[CallEvent]],
) -> None:
    events = [e for call in calls for e in call]
    floor = Floor(rules=RULES)
    for event in sorted(events, key=lambda e: e.occurred_at):
        floor.apply(event, event.occurred_at, arrived=event.occurred_at)
    later = NOW + timedelta(days=2)
    floor.forget_ended(later)  # forgotten...
    floor.forget_ended(later + timedelta(days=1, hours=1))  # ...and their event ids gone too
    ended = {e.call_id for e in events if e.type == "call.ended"}
    assert not any(call_id in floor.calls for call_id in ended)
    resent_at = later + timedelta(days=1, hours=2)  # the core's time only moves forward
    before = _kpis(floor, resent_at)  # the week window (Mon 30 March on) still holds them
    for event in events:
        if event.call_id in ended:
            floor.apply(event, resent_at, arrived=resent_at)
    registry = floor.core.calls.metrics.registry
    late = registry.get_sample_value("callpulse_aggregator_events_total", {"result": "too_late"})
    assert late == len(ended)  # each call's first event resent; the rest merge into its state
    assert all(floor.calls[call_id].history_only for call_id in ended)
    assert _kpis(floor, resent_at) == before


def test_a_late_sale_for_a_forgotten_call_reaches_history_beside_the_call() -> None:
    floor = Floor(rules=RULES)
    start = NOW - timedelta(hours=3)
    records = {}
    for event in full_call("c1", "r1", start, talk=400):
        for record in map(
            call_record, floor.apply(event, event.occurred_at, arrived=event.occurred_at).records
        ):
            records[record.call_id] = record
    floor.forget_ended(NOW - timedelta(hours=1))
    assert floor.calls["c1"].forgotten
    sale = ev("call.outcome", "c1", NOW, rep_id="r1", outcome="sale", amount="99.5")
    for record in map(call_record, floor.apply(sale, NOW, arrived=NOW).records):
        records[record.call_id] = record
    [late] = [r for r in records.values() if r.call_id != "c1"]
    assert late.call_id.startswith("c1~")
    assert {f.kpi for f in late.facts} == {"conversions", "revenue"}
    history = Counter[str]()
    for record in records.values():
        for fact in record.facts:
            history[fact.kpi] += fact.value
    today = floor.snapshot("r1", NOW).windows["today"]  # type: ignore[index]
    assert today.dials == history["dials"] == 1
    assert today.conversions == history["conversions"] == 1
    assert today.revenue == history["revenue"] == Decimal("99.5")


def _stage1(events: list[tuple[CallEvent, float]]) -> list[RepFact]:
    """Stage 1 from no state: the facts of the events, applied in the order given."""
    state = None
    facts: list[RepFact] = []
    for event, arrived in events:
        step = apply_event(state, event, RULES, arrived)
        state, facts = step.state, facts + step.facts
    return facts


def test_a_replay_in_another_order_after_lost_states_counts_each_call_once() -> None:
    """A worker sends the facts of a call's first events, then dies before its call state is
    durable; the replay reads the call's events again in another order (records fetched past
    the committed offset come before the seek back). Rocksdb soak of 2026-12-03 (poison, seed
    57068990): the replay made each such call a second incarnation, counted twice. Versions
    that counted changes of credit left a stale credit after a transfer or a corrected outcome
    (12 and 492 bad prefix-and-order pairs). Every prefix sent first, every order of the
    replay: a call with a sale, one with a repeated event, an unanswered dial, a transfer, a
    corrected outcome."""
    start = NOW - timedelta(hours=3)
    sale = full_call("c1", "r1", start, talk=400, outcome="sale", amount="10")
    repeated = full_call("c2", "r1", start, talk=100)
    repeated.insert(2, repeated[0].model_copy())
    transfer = [
        ev("call.started", "c4", start, rep_id="r1"),
        ev("call.answered", "c4", start + timedelta(seconds=5), rep_id="r1"),
        ev("call.ended", "c4", start + timedelta(seconds=65), rep_id="r2", end_status="completed"),
        ev("call.outcome", "c4", start + timedelta(seconds=90), rep_id="r2", outcome="sale"),
    ]
    corrected = full_call("c5", "r1", start, talk=400, outcome="sale", amount="10")
    corrected.append(
        ev("call.outcome", "c5", start + timedelta(hours=1), rep_id="r1", outcome="no_sale")
    )
    cases = (sale, repeated, full_call("c3", "r2", start), transfer, corrected)
    for events in cases:
        arrived = [(event, 1_000.0 + i) for i, event in enumerate(events)]  # record times
        want = _buckets(_facts_in_order([events]))
        for sent in range(1, len(arrived) + 1):
            for replay in itertools.permutations(arrived):
                got = _buckets(_stage1(arrived[:sent]) + _stage1(list(replay)))
                assert got == want, (events[0].call_id, sent, [e.event_id for e, _ in replay])


def test_a_second_replay_after_a_partial_one_counts_each_call_once() -> None:
    """Two lost states in a row: the first replay dies part-way through another order, the
    second reads the events in yet another one. The last version still wins."""
    start = NOW - timedelta(hours=3)
    transfer = [
        ev("call.started", "c6", start, rep_id="r1"),
        ev("call.answered", "c6", start + timedelta(seconds=5), rep_id="r1"),
        ev("call.ended", "c6", start + timedelta(seconds=65), rep_id="r2", end_status="completed"),
        ev("call.outcome", "c6", start + timedelta(seconds=90), rep_id="r2", outcome="sale"),
        ev("call.outcome", "c6", start + timedelta(hours=1), rep_id="r3", outcome="no_sale"),
    ]
    arrived = [(event, 1_000.0 + i) for i, event in enumerate(transfer)]
    want = _buckets(_facts_in_order([transfer]))
    rnd = random.Random(20261203)
    for _ in range(400):
        first, second = rnd.sample(arrived, len(arrived)), rnd.sample(arrived, len(arrived))
        cut = rnd.randint(1, len(arrived))
        facts = _stage1(arrived[: rnd.randint(1, len(arrived))]) + _stage1(first[:cut])
        assert _buckets(facts + _stage1(second)) == want


def test_a_stale_close_before_or_after_a_late_outcome_ends_on_one_version() -> None:
    """A call left open is closed stale by the clock, which a replay reads at another point: the
    outcome before the close or after it gives one last version with one credit."""
    start = NOW - timedelta(hours=8)
    begun = full_call("c7", "r1", start, talk=400)[:2]  # started, answered: no end
    outcome = ev("call.outcome", "c7", start + timedelta(minutes=9), rep_id="r1", outcome="sale")
    last = []
    for before_close, after_close in ((begun, [outcome]), ([*begun, outcome], [])):
        state = None
        for event in before_close:
            state = apply_event(state, event, RULES, 1_000.0).state
        step = close_if_stale(state, NOW, RULES)
        assert step is not None
        state = step.state
        for event in after_close:
            state = apply_event(state, event, RULES, 1_001.0).state
        last.append((state.version, state.credited, state.stale_closed))
    assert last[0] == last[1]
    assert last[0][0] == 2 * 3 + 1  # three events merged, closed stale


def test_applying_an_event_leaves_the_state_it_was_given_as_it_was() -> None:
    """`apply_event` works on a copy: the reps a transfer adds land in the new state only."""
    start = NOW - timedelta(hours=3)
    first = apply_event(None, ev("call.started", "c8", start, rep_id="r1"), RULES, 1_000.0)
    moved = ev("call.ended", "c8", start + timedelta(seconds=65), rep_id="r2", end_status="failed")
    second = apply_event(first.state, moved, RULES, 1_001.0)
    assert (first.state.reps, second.state.reps) == (["r1"], ["r1", "r2"])
