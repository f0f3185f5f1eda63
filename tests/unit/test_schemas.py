"""The v1 event contract and its committed JSON Schema files."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas import generate
from schemas.events import CallEnded, CallOutcome, event_from_json, event_to_json, parse_event
from schemas.roster import Team

BASE = {"event_id": "e1", "call_id": "c1", "occurred_at": "2026-03-10T09:00:00+08:00"}


def test_committed_json_schema_is_fresh() -> None:
    for name, text in generate.render().items():
        assert (generate.OUT / name).read_text() == text, f"{name} is stale: run `make schemas`"


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        parse_event({**BASE, "type": "call.answered", "occurred_at": "2026-03-10T09:00:00"})


def test_unknown_type_is_rejected_and_unknown_fields_ignored() -> None:
    with pytest.raises(ValidationError):
        parse_event({**BASE, "type": "call.exploded"})
    event = parse_event({**BASE, "type": "call.answered", "vendor_field": 1})
    assert event.type == "call.answered"


def test_events_are_frozen_and_round_trip_with_wire_names() -> None:
    event = parse_event({**BASE, "type": "call.ended", "end_status": "completed", "from": "+155"})
    assert isinstance(event, CallEnded)
    with pytest.raises(ValidationError):
        event.end_status = "busy"  # type: ignore[misc]
    assert b'"from":"+155"' in event_to_json(event)
    assert event_from_json(event_to_json(event)) == event


@pytest.mark.parametrize(
    ("amount", "ok"),
    [("199.99", True), (12, True), ("-1", False), ("1.00001", False), ("x", False)],
)
def test_outcome_amount_is_a_decimal(amount: object, ok: bool) -> None:
    data = {**BASE, "type": "call.outcome", "outcome": "sale", "amount": amount}
    if ok:
        assert isinstance(parse_event(data), CallOutcome)
    else:
        with pytest.raises(ValidationError):
            parse_event(data)


@pytest.mark.parametrize("csat", [0, 6, "good"])
def test_csat_is_1_to_5(csat: object) -> None:
    with pytest.raises(ValidationError):
        parse_event({**BASE, "type": "survey.completed", "csat": csat})


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "utc", "../etc", ""])
def test_a_team_time_zone_must_be_an_iana_name(zone: str) -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        Team(team_id="t1", timezone=zone)
