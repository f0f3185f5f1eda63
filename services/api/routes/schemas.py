"""Request and response bodies of the API (what OpenAPI documents)."""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
)

from schemas.alerts import Alert
from schemas.kpis import (
    KPI_FIELDS,
    SPEC,
    HourlyPoint,
    KpiName,
    Kpis,
    RepStatus,
    TargetProgress,
    WindowName,
)
from schemas.roster import AlertRule, Rep, Shift, Target, Team, TimeZoneName
from services.api.alerts.channels import Channel, ChannelType

Metric = KpiName

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Text = Annotated[str, StringConstraints(max_length=200, pattern=_PRINTABLE)]
"""A name or id as stored: at most 200 characters, no control characters (no NUL for Postgres)."""
RepId = Annotated[str, Path(min_length=1, max_length=200, pattern=_PRINTABLE)]
TeamId = Annotated[str, Path(min_length=1, max_length=200, pattern=_PRINTABLE)]
TeamFilter = Annotated[
    str | None,
    Query(max_length=200, pattern=_PRINTABLE, description="One team; every team when omitted."),
]
AlertId = Annotated[str, Path(min_length=1, max_length=512, pattern=_PRINTABLE)]

LAG_DESCRIPTION = (
    "Seconds from the arrival in Kafka of the newest event these numbers include to their being "
    "served by this API: the aggregator's lag when it computed the snapshot plus the delivery "
    "delay to this replica. It does not grow while a rep is idle; `age_seconds` (now - `as_of`) "
    "says how old the snapshot is."
)


class ProblemOut(BaseModel):
    """An RFC 9457 problem document (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Field paths and messages of a 422."
    )


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem+json errors."""
    described = {
        401: "Missing, unknown or revoked API key.",
        403: "The key's role is not allowed to do this.",
        404: "No such subject.",
        409: "The request conflicts with the current state.",
        422: "The request does not match the schema.",
        503: "A dependency is unavailable; retry after `Retry-After` seconds.",
    }
    return {
        status: {
            "model": ProblemOut,
            "description": described.get(status, "Error."),
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }


class RepKpisOut(Kpis):
    """One rep's KPIs over one window, with live status and target progress."""

    rep_id: str
    rep_name: str | None = None
    team_id: str | None = None
    timezone: str
    as_of: AwareDatetime | None = Field(
        description="When the aggregator computed these numbers; null when there is no activity."
    )
    lag_seconds: float = Field(description=LAG_DESCRIPTION)
    age_seconds: float | None = Field(default=None, description="Seconds since `as_of`.")
    status: RepStatus = "idle"
    status_since: AwareDatetime | None = None
    targets: list[TargetProgress] = Field(
        default=[], description="Progress per target, every window the rep has targets for."
    )
    hourly: list[HourlyPoint] = Field(
        default=[], description="Connect rate by local hour of day over the retained days."
    )


class TeamKpisOut(Kpis):
    """Team totals over one window and one row per rep: the wallboard payload."""

    team_id: str
    timezone: str
    as_of: AwareDatetime | None = Field(description="The newest of the reps' `as_of`.")
    lag_seconds: float = Field(description="The largest of the reps' lag. " + LAG_DESCRIPTION)
    rep_count: int
    status_counts: dict[str, int] = Field(description="Reps per live status.")
    reps: list[RepKpisOut]


class LeaderboardRow(BaseModel):
    """One ranked rep; equal values share a rank."""

    model_config = ConfigDict(frozen=True)

    rank: int
    rep_id: str
    rep_name: str | None = None
    team_id: str | None = None
    value: float
    kpis: Kpis


class LeaderboardOut(BaseModel):
    """Reps ranked by one KPI over one window, after the quality floors."""

    metric: Metric
    window: WindowName
    team_id: str | None = None
    floors: dict[str, float] = Field(description="Quality floors applied: KPI -> minimum.")
    generated_at: AwareDatetime
    rows: list[LeaderboardRow]


class TeamsOut(BaseModel):
    """Every team, by id."""

    teams: list[Team]


class RepsOut(BaseModel):
    """Reps, by id."""

    reps: list[Rep]


class TeamIn(BaseModel):
    """A team's name, time zone (defaults to the service's) and shift."""

    name: Text | None = None
    timezone: TimeZoneName | None = None
    shift: Shift = Shift()


class RepIn(BaseModel):
    """A rep's name, team and provider agent ids (e.g. {"aircall": "123"})."""

    name: Text | None = None
    team_id: Text | None = None
    external_ids: dict[Text, Text] = {}


class TargetsIn(BaseModel):
    """The full list of targets of a team or a rep (replaces the previous list)."""

    targets: list[Target] = Field(max_length=200)

    @field_validator("targets")
    @classmethod
    def _finite(cls, targets: list[Target]) -> list[Target]:
        if any(not math.isfinite(t.value) for t in targets):
            raise ValueError("target values must be finite")
        return targets


# The report models' KPI fields are those of `Kpis`, every one required, described from the
# declaration (schemas.kpis.KPI_SPECS): a declared KPI reaches the reports with no edit here.
# mypy cannot see fields made at run time; reports build these models from `kpi_values` dicts.
if TYPE_CHECKING:
    _ReportKpiFields = BaseModel
else:
    _ReportKpiFields = create_model(
        "_ReportKpiFields",
        **{
            name: (Kpis.model_fields[name].annotation, Field(description=SPEC[name].description))
            for name in KPI_FIELDS
        },
    )


class ReportKpis(_ReportKpiFields):
    """KPIs of one subject over a report period; rates and averages are null on a 0 denominator."""


class DailyRow(ReportKpis):
    """One rep's day."""

    rep_id: str


class DailyReportOut(BaseModel):
    """Per-rep KPIs of one local day, from the call history."""

    date: date
    team_id: str | None
    timezone: str
    start: AwareDatetime
    end: AwareDatetime
    totals: ReportKpis
    reps: list[DailyRow]


class HourlyReportOut(BaseModel):
    """When do customers pick up: outbound dials and connects, each by the local hour it lands
    in (a dial when the call starts, a connect when it is answered), as live windows count."""

    team_id: str | None
    timezone: str
    days: int
    start: AwareDatetime
    end: AwareDatetime
    hours: list[HourlyPoint] = Field(description="All 24 local hours, 0-23.")


class AlertRulesIn(BaseModel):
    """The full list of alert rules of a team or a rep (replaces the previous list).

    A rep's rule overrides the team's rule with the same `rule_id`.
    """

    rules: list[AlertRule] = Field(max_length=100)

    @field_validator("rules")
    @classmethod
    def _consistent(cls, rules: list[AlertRule]) -> list[AlertRule]:
        ids = [r.rule_id for r in rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule_id values must be unique")
        for rule in rules:
            if rule.kind == "threshold" and rule.value is None:
                raise ValueError(f"threshold rule {rule.rule_id!r} needs a value")
            if rule.value is not None and not math.isfinite(rule.value):
                raise ValueError("rule values must be finite")
        return rules


class DeliveryOut(BaseModel):
    """Where the notification of one transition on one channel stands."""

    channel: str = Field(description="`<type>:<digest of the URL>`, as in `GET …/channels`.")
    state: Literal["firing", "resolved"]
    status: Literal["pending", "sent", "failed"]
    attempts: int
    sent_at: AwareDatetime | None
    last_error: str | None


class AlertOut(Alert):
    """An alert as of its latest transition, with its acknowledgement and deliveries."""

    acked_at: AwareDatetime | None = None
    acked_by: str | None = None
    updated_at: AwareDatetime
    deliveries: list[DeliveryOut] = Field(default_factory=list)


class AlertsOut(BaseModel):
    """Alerts, newest fired first."""

    alerts: list[AlertOut]
    generated_at: AwareDatetime


class ChannelsIn(BaseModel):
    """A team's notification channels (replaces the previous list; `[]` silences the team)."""

    channels: list[Channel] = Field(max_length=20)

    @field_validator("channels")
    @classmethod
    def _distinct(cls, channels: list[Channel]) -> list[Channel]:
        keys = [c.key for c in channels]
        if len(keys) != len(set(keys)):
            raise ValueError("a channel (type and URL) is listed twice")
        return channels


class ChannelOut(BaseModel):
    """A channel without its secrets: the URL shows scheme, host and port only."""

    key: str = Field(description="How deliveries name this channel: `<type>:<digest of URL>`.")
    type: ChannelType
    url: str
    has_secret: bool


class ChannelsOut(BaseModel):
    """A team's channels, or (`configured` false) the service defaults it falls back to."""

    team_id: str
    configured: bool
    channels: list[ChannelOut]
