"""Coaching contract: rep and team scorecards with findings, the sales funnel, KPIs per campaign
and the best-time-to-call heatmap, all summed from the call history like the reports."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.kpis import KpiName

Period = Literal["day", "week", "month"]
"""A local calendar period: `day` (the `today` window), `week` (ISO week), `month`."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeriodOut(_Frozen):
    """The period a scorecard covers and the one before it, in the team's time zone."""

    period: Period
    date: dt.date = Field(description="The local date the period contains.")
    timezone: str
    start: AwareDatetime
    end: AwareDatetime
    previous_start: AwareDatetime
    previous_end: AwareDatetime


class ScoreLine(_Frozen):
    """One KPI of a rep over the period, against its target, its team and the previous period."""

    kpi: KpiName
    value: float | None
    previous: float | None = Field(description="The value over the previous period.")
    change: float | None = Field(description="value - previous; null if either is null.")
    change_ratio: float | None = Field(description="change / previous; null on a 0 or null base.")
    target: float | None = Field(description="The rep's target for the period's window, if any.")
    progress: float | None = Field(description="value / target; 1.0 means met.")
    team_median: float | None = Field(description="Median over the team's reps with a value.")
    percentile: float | None = Field(
        description="Share of the team's reps (with a value) below this one, counting ties as "
        "half, in percent (0..100); higher is better for every KPI."
    )


class Finding(_Frozen):
    """A coaching note produced by one rule of the findings table, with the numbers behind it."""

    rule: str = Field(description="The id of the rule in the findings table.")
    kind: Literal["coach", "praise"]
    kpi: KpiName = Field(description="The KPI the finding is about.")
    en: str
    zh: str
    numbers: dict[str, float | None] = Field(
        description="Every number the rule looked at, as `<kpi>.<value|median|target|"
        "percentile|previous|change_ratio|progress>`."
    )


class RepScorecard(_Frozen):
    """A rep's KPIs over a period with targets, team comparison, trend and findings."""

    rep_id: str
    rep_name: str | None = None
    team_id: str | None = None
    team_size: int = Field(description="Reps the team comparison is over.")
    period: PeriodOut
    lines: list[ScoreLine]
    findings: list[Finding]


class BelowTeam(_Frozen):
    """A rep below the team median on one KPI."""

    rep_id: str
    rep_name: str | None = None
    value: float | None
    gap: float = Field(description="value / team median - 1 (negative: below the team).")


class KpiRanking(_Frozen):
    """The reps below the team median on one KPI, furthest below first."""

    kpi: KpiName
    team_median: float | None
    team_value: float | None = Field(description="The team's own KPI over its total counters.")
    below: list[BelowTeam]


class TeamRep(_Frozen):
    """One rep of a team view: every KPI's value and the rules of the rep's findings (the full
    scorecard, with each finding's words and numbers, is `GET /v1/reps/{rep_id}/scorecard`)."""

    rep_id: str
    rep_name: str | None = None
    values: dict[KpiName, float | None]
    findings: list[str] = Field(description="The ids of the findings-table rules that hold.")


class TeamScorecard(_Frozen):
    """Every rep of a team with its KPIs and, per KPI, who is below the team."""

    team_id: str
    team_size: int
    period: PeriodOut
    rankings: list[KpiRanking]
    reps: list[TeamRep]


class FunnelStage(_Frozen):
    """One stage of the funnel: its count, its rate from the stage before, and the team's."""

    stage: Literal["dials", "connects", "conversations", "conversions"]
    count: int
    rate: float | None = Field(
        description="connects: the connect rate (outbound connects per dial); conversations: "
        "per connect; conversions: per conversation. Null on a 0 denominator."
    )
    team_count: int | None = None
    team_rate: float | None = None


class Loss(_Frozen):
    """Dials of the period that did not end in a sale, by why: the end status of an unanswered
    call, or the outcome code of an answered one (`none` when no outcome was given)."""

    stage: Literal["not_connected", "connected"]
    reason: str
    count: int
    team_count: int | None = None


class Funnel(_Frozen):
    """Dials -> connects -> conversations -> conversions of a rep, team or campaign."""

    rep_id: str | None = None
    team_id: str | None = None
    campaign_id: str | None = None
    period: PeriodOut
    stages: list[FunnelStage]
    losses: list[Loss]


class CampaignRow(_Frozen):
    """The KPIs of one campaign (`none`: calls without a campaign_id)."""

    campaign_id: str
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


class CampaignReport(_Frozen):
    """KPIs per campaign over a period."""

    team_id: str | None = None
    period: PeriodOut
    campaigns: list[CampaignRow]


class HeatCell(_Frozen):
    """One local weekday x hour over the heatmap's weeks."""

    weekday: int = Field(ge=1, le=7, description="ISO weekday, 1 = Monday.")
    hour: int = Field(ge=0, le=23)
    dials: int
    connects: int = Field(description="Connects, inbound included (as the KPI counts them).")
    inbound_calls: int
    conversions: int
    connect_rate: float | None = Field(description="Outbound connects per dial.")
    conversion_rate: float | None = Field(description="Conversions per connect.")
    sparse: bool = Field(description="Fewer dials than `min_dials`: the rates say little.")


class Heatmap(_Frozen):
    """Connect and conversion rate by the team's local weekday and hour: when to call."""

    team_id: str | None = None
    campaign_id: str | None = None
    timezone: str
    weeks: int
    min_dials: int
    start: AwareDatetime
    end: AwareDatetime
    cells: list[HeatCell] = Field(description="All 168 cells, Monday 00:00 first.")


Language = Literal["zh-CN", "en"]
DigestKind = Literal["daily", "weekly"]
_EMAIL = r"^[^@\s]+@[^@\s]+$"


class DigestSettings(_Frozen):
    """When and where a team's digests go: a daily one at `daily_at` and a weekly one on
    `weekly_day` at `weekly_at`, team-local times, to the team's alert channels and by e-mail."""

    enabled: bool = True
    language: Language = "zh-CN"
    daily: bool = True
    daily_at: dt.time = dt.time(18, 0)
    weekly: bool = True
    weekly_day: int = Field(default=5, ge=1, le=7, description="ISO weekday, 1 = Monday.")
    weekly_at: dt.time = dt.time(18, 0)
    channels: bool = Field(default=True, description="Send to the team's alert channels.")
    emails: list[Annotated[str, StringConstraints(pattern=_EMAIL, max_length=320)]] = Field(
        default=[], max_length=50
    )


class DigestRep(_Frozen):
    """A rep's conversions over the digest's period and the one before."""

    rep_id: str
    rep_name: str | None = None
    conversions: float | None
    previous: float | None
    change: float | None


class DigestFinding(_Frozen):
    """A rep below the team on a KPI, with the finding that says so."""

    rep_id: str
    rep_name: str | None = None
    finding: Finding


class DigestStage(_Frozen):
    """A funnel stage of the team now and in the period before."""

    stage: str
    count: int
    rate: float | None
    previous_count: int
    previous_rate: float | None


class DigestCompetition(_Frozen):
    """A competition period of the team's that ended within the digest's period."""

    competition_id: int
    name: str
    period_key: str
    winners: list[str] = Field(description="Rep ids (or team ids, team against team).")


class Digest(_Frozen):
    """A team's daily or weekly summary, as sent (the webhook body; `text` for chats and mail)."""

    digest_id: str = Field(description="`<team>:<kind>:<period>`: the same on every replica.")
    team_id: str
    kind: DigestKind
    period_key: str = Field(description="The local date (daily) or ISO week (weekly).")
    language: Language
    at: AwareDatetime = Field(description="When it was due (the team-local time set).")
    period: PeriodOut
    top: list[DigestRep] = Field(description="Most conversions, at most three.")
    movers: list[DigestRep] = Field(description="Biggest changes in conversions, up or down.")
    below: list[DigestFinding] = Field(description="Reps below the team, with the finding.")
    funnel: list[DigestStage]
    competitions: list[DigestCompetition] = Field(
        default=[], description="Results of the team's competitions that ended in the period."
    )
    title: str
    text: str
