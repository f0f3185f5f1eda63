"""Call record contract: the assembled call, published by the aggregator to `callpulse.calls`
(compacted, key call_id) at each new version and stored once per call in history."""

from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class CallFact(BaseModel):
    """What a call credits to one counter, and when: the KPI rule table applied to the call.

    History sums these per day and hour exactly as the live windows sum their buckets, so a
    report and a wallboard never disagree on which day a call's dial or connect belongs to."""

    model_config = ConfigDict(frozen=True)

    kpi: str = Field(
        description="The counter: dials, inbound_calls, connects, talk_seconds, "
        "conversations, conversions, revenue, csat_sum or csat_responses."
    )
    at: AwareDatetime = Field(description="When the credit lands (the window it counts in).")
    value: Decimal = Field(description="The credit in natural units (seconds, currency).")


class CallRecord(BaseModel):
    """One call as assembled from all its events; a higher `version` supersedes a lower one."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    version: int
    rep_id: str | None = None
    team_id: str | None = None
    campaign_id: str | None = None
    direction: str | None = None
    started_at: AwareDatetime | None = None
    answered_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    end_status: str | None = None
    talk_seconds: float = 0
    connected: bool = False
    outcome: str | None = None
    outcome_at: AwareDatetime | None = None
    amount: Decimal | None = None
    csat: int | None = None
    stale_closed: bool = False
    last_event_at: AwareDatetime
    facts: list[CallFact] = Field(
        default_factory=list,
        description="What the call credits to its rep's counters, each at its own time (empty "
        "while the rep is unknown). Absent from records of versions before 0.2.",
    )
