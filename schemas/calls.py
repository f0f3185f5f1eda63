"""Call record contract: the assembled call, published by the aggregator to `callpulse.calls`
(compacted, key call_id) at each new version and stored once per call in history."""

from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict


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
