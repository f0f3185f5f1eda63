"""Which surveys raise a follow-up alert, and what it says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.calls import CallFact, CallRecord
from services.api.coaching.csat import follow_ups

AT = datetime(2026, 3, 11, 14, 0, tzinfo=UTC)


def record(csat: int | None, rep: str | None = "r1") -> CallRecord:
    return CallRecord(
        call_id="c1", version=3, rep_id=rep, team_id="t1", csat=csat, last_event_at=AT
    )


@pytest.mark.parametrize(
    ("csat", "rep", "threshold", "alerts"),
    [
        (1, "r1", 2, 1),
        (2, "r1", 2, 1),
        (3, "r1", 2, 0),
        (None, "r1", 2, 0),
        (1, None, 2, 0),
        (1, "r1", 0, 0),
    ],
)
def test_low_surveys_only(csat: int | None, rep: str | None, threshold: int, alerts: int) -> None:
    assert len(follow_ups([record(csat, rep)], threshold)) == alerts


def test_the_alert_names_the_call_and_rep_at_the_survey_time() -> None:
    [alert] = follow_ups([record(1)], 2)
    assert alert.alert_id == "csat:c1"
    assert (alert.rep_id, alert.team_id, alert.value, alert.threshold) == ("r1", "t1", 1.0, 2.0)
    assert "c1" in alert.message_en
    assert "r1" in alert.message_en
    assert "c1" in alert.message_zh
    assert alert.at == AT
    survey = AT - timedelta(minutes=1)
    fact = CallFact(kpi="csat_responses", at=survey, value=Decimal(1))
    with_facts = record(1).model_copy(update={"facts": [fact]})
    assert follow_ups([with_facts], 2)[0].at == survey
