"""Property: a shuffled log with duplicates gives exactly the reference fold's KPIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import CallEvent, parse_event
from schemas.kpis import WINDOWS
from schemas.roster import RosterRecord, Team
from services.aggregator.domain.reference import fold
from tests.unit.aggregator.floor import Floor

NOW = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
REPS = ("r1", "r2", "r3")
TZ = {"t1": "America/New_York", "t2": "Asia/Shanghai"}
REP_TEAM = {"r1": "t1", "r2": "t2", "r3": "t2"}


@st.composite
def call_events(draw: st.DrawFn, index: int) -> list[CallEvent]:
    """The events of one call: any subset of the lifecycle, at times up to 40 days back."""
    call_id = f"c{index}"
    start = NOW - timedelta(seconds=draw(st.integers(0, 40 * 86400)))
    direction = draw(st.sampled_from(["outbound", "inbound"]))
    rep = draw(st.sampled_from(REPS))
    other = draw(st.sampled_from(REPS))
    talk = draw(st.sampled_from([0, 12.5, 299.999, 300, 1234.567]))
    raw: list[dict[str, object]] = []

    def add(type_: str, at: datetime, **fields: object) -> None:
        raw.append(
            {
                "type": type_,
                "call_id": call_id,
                "occurred_at": at,
                "event_id": f"{call_id}-{len(raw)}",
                **fields,
            }
        )

    if draw(st.booleans()):
        add(
            "call.started",
            start,
            rep_id=None if direction == "inbound" else rep,
            direction=direction,
        )
    answered = start + timedelta(seconds=draw(st.integers(1, 60)))
    if draw(st.booleans()):
        add("call.answered", answered, rep_id=rep)
    end = answered + timedelta(seconds=talk)
    if draw(st.booleans()):
        status = draw(st.sampled_from(["completed", "no_answer", "busy", "failed"]))
        cdr = draw(st.booleans())
        add(
            "call.ended",
            end,
            rep_id=draw(st.sampled_from([rep, other])),
            end_status=status,
            direction=direction,
            talk_seconds=talk if status == "completed" else None,
            started_at=start if cdr else None,
            answered_at=answered if cdr and status == "completed" else None,
        )
    for k in range(draw(st.integers(0, 2))):
        add(
            "call.outcome",
            end + timedelta(seconds=30 + 60 * k),
            rep_id=rep,
            outcome=draw(st.sampled_from(["sale", "callback", "not_interested"])),
            amount=draw(st.sampled_from([None, "0", "19.99", "1200.5001"])),
        )
    if draw(st.booleans()):
        add(
            "survey.completed", end + timedelta(minutes=5), rep_id=rep, csat=draw(st.integers(1, 5))
        )
    return [parse_event(r) for r in raw]


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[CallEvent], list[CallEvent]]:
    """(de-duplicated log, shuffled log with duplicates)."""
    n = draw(st.integers(1, 12))
    events = [e for i in range(n) for e in draw(call_events(i))]
    dupes = draw(st.lists(st.sampled_from(events), max_size=len(events))) if events else []
    shuffled = draw(st.permutations(events + dupes))
    return events, shuffled


@settings(max_examples=150, deadline=None)
@given(logs())
def test_any_shuffle_with_duplicates_equals_the_reference_fold(
    log: tuple[list[CallEvent], list[CallEvent]],
) -> None:
    events, shuffled = log
    floor = Floor()
    for team_id, tz in TZ.items():
        floor.roster.apply(RosterRecord(team=Team(team_id=team_id, timezone=tz)))
    for rep, team in REP_TEAM.items():
        from schemas.roster import Rep

        floor.roster.apply(RosterRecord(rep=Rep(rep_id=rep, team_id=team)))
    for event in shuffled:
        floor.apply(event, NOW)
    expected = fold(events, NOW, {rep: TZ[team] for rep, team in REP_TEAM.items()})
    for rep in REPS:
        if rep not in floor.reps:
            assert rep not in expected or all(
                v["dials"] == 0 and v["connects"] == 0 for v in expected[rep].values()
            )
            continue
        snap = floor.snapshot(rep, NOW)
        for window in WINDOWS:
            got = snap.windows[window].model_dump(exclude={"window", "window_start", "window_end"})
            want = expected.get(rep, {}).get(window)
            if want is None:
                assert all(not v for v in got.values() if v is not None)
                continue
            assert got == want, (rep, window)


@settings(max_examples=100, deadline=None)
@given(logs(), st.integers(0, 3))
def test_a_call_stage_1_keeps_decoded_equals_its_stored_form(
    log: tuple[list[CallEvent], list[CallEvent]], sweeps: int
) -> None:
    """Stage 1 reads the next event's call from its decoded copy, not the store: each copy must
    be what decoding the store gives, through closing stale calls and forgetting ended ones."""
    from services.aggregator.domain.calls import CallState
    from services.aggregator.packing import loads

    _events, shuffled = log
    floor = Floor()
    step = max(1, len(shuffled) // (sweeps + 1))
    for i, event in enumerate(shuffled):
        floor.apply(event, NOW)
        if i % step == step - 1:  # sweeps in between: stale calls closed, ended ones forgotten
            floor.close_stale(NOW + timedelta(days=i % 3))
    stage = floor.core.calls
    for key, state in stage._decoded.items():  # noqa: SLF001
        raw = stage.store.get(key)
        assert raw is not None, key
        assert state == CallState.from_dict(loads(raw)), key


@settings(max_examples=100, deadline=None)
@given(logs())
def test_the_record_json_the_worker_sends_is_the_models_byte_for_byte(
    log: tuple[list[CallEvent], list[CallEvent]],
) -> None:
    """The Faust driver encodes call records without building the models: every version a
    log makes (CSAT, outcomes with amounts, transfers, stale closes) encodes as the model."""
    from services.aggregator.domain.calls import call_record
    from services.aggregator.packing import record_json

    _events, shuffled = log
    floor = Floor()
    versions = []
    for event in shuffled:
        versions += floor.apply(event, NOW).records
    versions += floor.close_stale(NOW + timedelta(days=1)).records
    for state in versions:
        assert record_json(state) == call_record(state).model_dump_json().encode()


@settings(max_examples=100, deadline=None)
@given(logs())
def test_the_facts_stage_2_takes_from_memory_are_the_ones_it_would_decode(
    log: tuple[list[CallEvent], list[CallEvent]],
) -> None:
    """The Faust worker's stage 2 reads its own packs back from memory (`SentPacks`): every
    fact a log makes (offsets other than UTC, transfers, stale closes) must equal, and encode
    as, the one decoding the pack gives."""
    from services.aggregator.packing import encode, grouped, unpack

    _events, shuffled = log
    floor = Floor()
    facts = []
    shanghai = timezone(timedelta(hours=8))
    for i, event in enumerate(shuffled):
        if i % 2:  # the same instant, sent with another offset
            event = event.model_copy(update={"occurred_at": event.occurred_at.astimezone(shanghai)})
        facts += floor.apply(event, NOW + timedelta(seconds=i)).facts
    facts += floor.close_stale(NOW + timedelta(days=1)).facts
    for group in grouped(facts, 3).values():
        decoded = list(unpack(encode(group)))
        assert decoded == group
        assert encode(decoded) == encode(group)
        for (mine, _), (theirs, _) in zip(group, decoded, strict=True):
            for a, b in ((mine.status_at, theirs.status_at), (mine.event_at, theirs.event_at)):
                assert a.utcoffset() == b.utcoffset()


@settings(max_examples=100, deadline=None)
@given(logs())
def test_a_call_state_is_stored_as_its_fields_byte_for_byte(
    log: tuple[list[CallEvent], list[CallEvent]],
) -> None:
    """Stage 1 stores a call by encoding the dataclass itself (`state_json`): every state a
    log makes, forgotten ones included, must store as `dumps(state.stored())` does."""
    from services.aggregator.domain.calls import forget
    from services.aggregator.packing import dumps, state_json

    _events, shuffled = log
    floor = Floor()
    states = []
    for event in shuffled:
        states += floor.apply(event, NOW).records
    states += floor.close_stale(NOW + timedelta(days=1)).records
    states += [forget(state) for state in states if not state.is_open]
    for state in states:
        assert state_json(state) == dumps(state.stored())
