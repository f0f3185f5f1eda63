"""Fault injection changes how events arrive, never which events exist or the KPIs they give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import CallEvent
from services.simulator.faults import Faults, dedupe, inject
from services.simulator.floor import FloorConfig, generate, rep_timezones, stream
from services.simulator.truth import ground_truth

END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CONFIG = FloorConfig(reps=6, teams=2, shift=None, timezones=("UTC", "Asia/Kolkata"))
LOG = generate(CONFIG, END - timedelta(minutes=90), END)

fractions = st.floats(min_value=0, max_value=1)


def _ids(events: list[CallEvent]) -> list[str]:
    return [e.event_id for e in events]


@settings(max_examples=40, deadline=None)
@given(duplicates=fractions, reorder=fractions, late=fractions, seed=st.integers(0, 10**6))
def test_the_deduplicated_set_is_the_log(
    duplicates: float, reorder: float, late: float, seed: int
) -> None:
    faults = Faults(duplicates=duplicates, reorder=reorder, late=late, seed=seed)
    sent = list(inject(LOG, faults))
    assert all(a.send_at <= b.send_at for a, b in pairwise(sent))
    assert all(item.send_at >= item.event.occurred_at for item in sent)
    unique = dedupe(item.event for item in sent)
    assert sorted(_ids(unique)) == sorted(_ids(LOG))
    assert {e.event_id: e for e in unique} == {e.event_id: e for e in LOG}


def test_without_faults_every_event_is_sent_once_on_time() -> None:
    sent = list(inject(LOG))
    assert [item.event for item in sent] == LOG
    assert all(item.send_at == item.event.occurred_at for item in sent)


def test_faults_are_seeded_and_do_happen() -> None:
    faults = Faults(duplicates=0.1, reorder=0.2, late=0.05, seed=3)
    first = [(s.send_at, s.event.event_id) for s in inject(LOG, faults)]
    again = [(s.send_at, s.event.event_id) for s in inject(LOG, faults)]
    assert first == again
    ids = [event_id for _, event_id in first]
    assert 0.05 * len(LOG) < len(ids) - len(set(ids)) < 0.15 * len(LOG)
    assert ids != _ids(LOG)  # reordered
    late = [
        s for s in inject(LOG, faults) if s.send_at - s.event.occurred_at >= timedelta(minutes=1)
    ]
    assert late


def test_ground_truth_ignores_the_faults() -> None:
    zones = rep_timezones(CONFIG)
    faults = Faults(duplicates=0.3, reorder=0.3, late=0.1, seed=9)
    sent = [item.event for item in inject(LOG, faults)]
    assert ground_truth(sent, END, zones) == ground_truth(LOG, END, zones)
    assert ground_truth(LOG, END, zones)["rep-1-01"]["today"]["dials"] > 0


def test_inject_is_lazy_on_an_endless_stream() -> None:
    live = inject(stream(CONFIG, END), Faults(duplicates=0.5, late=0.2, seed=1))
    head = list(islice(live, 200))
    assert len(head) == 200
