"""KPI snapshot contract: what the aggregator publishes to `callpulse.kpis` and the API serves."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

WindowName = Literal["today", "hour", "15m", "60m", "week", "month"]
WINDOWS: tuple[WindowName, ...] = ("today", "hour", "15m", "60m", "week", "month")
RepStatus = Literal["idle", "ringing", "on_call", "wrap_up"]

KpiName = Literal[
    "dials",
    "inbound_calls",
    "connects",
    "connect_rate",
    "talk_seconds",
    "avg_talk_seconds",
    "conversations",
    "conversions",
    "conversion_rate",
    "revenue",
    "avg_deal",
    "csat_avg",
    "csat_responses",
]
"""Every KPI a snapshot, a leaderboard or a target can name."""
KPI_NAMES: tuple[KpiName, ...] = get_args(KpiName)


class Kpis(BaseModel):
    """The KPIs of one subject over one window; rates and averages are null on a 0 denominator."""

    model_config = ConfigDict(frozen=True)

    window: WindowName
    window_start: AwareDatetime
    window_end: AwareDatetime
    dials: int = 0
    inbound_calls: int = 0
    connects: int = 0
    connect_rate: float | None = None
    talk_seconds: float = 0
    avg_talk_seconds: float | None = None
    conversations: int = 0
    conversions: int = 0
    conversion_rate: float | None = None
    revenue: float = 0
    avg_deal: float | None = None
    csat_avg: float | None = None
    csat_responses: int = 0
    csat_sum: int = 0


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else round(num / den, 6)


def kpi_values(
    *,
    dials: int,
    inbound_calls: int,
    connects: int,
    talk_seconds: float,
    conversations: int,
    conversions: int,
    revenue: float,
    csat_sum: int,
    csat_responses: int,
) -> dict[str, Any]:
    """Every KPI of the design (§1) from additive totals: the one place the ratios are defined.

    `connects` counts every connected call and `inbound_calls` the inbound calls a rep answered,
    so `connect_rate` is outbound connects per dial while the averages use all connects.
    """
    return {
        "dials": dials,
        "inbound_calls": inbound_calls,
        "connects": connects,
        "connect_rate": _ratio(connects - inbound_calls, dials),
        "talk_seconds": round(talk_seconds, 3),
        "avg_talk_seconds": _ratio(talk_seconds, connects),
        "conversations": conversations,
        "conversions": conversions,
        "conversion_rate": _ratio(conversions, connects),
        "revenue": round(revenue, 4),
        "avg_deal": _ratio(revenue, conversions),
        "csat_avg": _ratio(csat_sum, csat_responses),
        "csat_responses": csat_responses,
        "csat_sum": csat_sum,
    }


ADDITIVE = (
    "dials",
    "inbound_calls",
    "connects",
    "talk_seconds",
    "conversations",
    "conversions",
    "revenue",
    "csat_sum",
    "csat_responses",
)


def combine(parts: list[Kpis], *, window: WindowName, start: datetime, end: datetime) -> Kpis:
    """Totals of several subjects' KPIs over one window (a team from its reps)."""
    sums: dict[str, Any] = {name: sum(getattr(p, name) for p in parts) for name in ADDITIVE}
    return Kpis(window=window, window_start=start, window_end=end, **kpi_values(**sums))


class TargetProgress(BaseModel):
    """Progress of one KPI against its target, with the pro-rata expectation during the shift."""

    model_config = ConfigDict(frozen=True)

    kpi: str
    window: WindowName
    target: float
    value: float | None
    progress: float | None = Field(description="value / target; 1.0 means met.")
    met: bool
    expected: float | None = Field(
        default=None, description="Pro-rata share of the target expected by now in the shift."
    )


class HourlyPoint(BaseModel):
    """Dials and connects in one local hour of day, over the retained days."""

    model_config = ConfigDict(frozen=True)

    hour: int = Field(ge=0, le=23)
    dials: int
    connects: int
    connect_rate: float | None


class RepSnapshot(BaseModel):
    """The latest state of one rep: every window, status and target progress (key: rep_id)."""

    model_config = ConfigDict(frozen=True)

    rep_id: str
    team_id: str | None = None
    rep_name: str | None = None
    timezone: str
    status: RepStatus = "idle"
    status_since: AwareDatetime | None = None
    as_of: AwareDatetime = Field(description="When the aggregator computed this snapshot.")
    lag_seconds: float = Field(
        description="Seconds from the newest applied event's arrival in Kafka to this snapshot."
    )
    last_event_at: AwareDatetime | None = None
    windows: dict[WindowName, Kpis]
    targets: list[TargetProgress] = []
    hourly: list[HourlyPoint] = []
