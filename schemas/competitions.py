"""Competition contract: what an admin defines (`CompetitionIn`), live standings and the frozen
results with their winners. Scores are KPI values over a period, computed from the same call
facts, by the same formulas (`schemas.kpis.kpi_values`), as the KPI windows and the reports."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from schemas.kpis import KpiName
from schemas.roster import TimeZoneName

PeriodKind = Literal["once", "daily", "weekly", "weekdays", "monthly"]
"""once: from `start` to `end`; daily: each local day; weekly: Monday 00:00 to the next Monday;
weekdays: Monday 00:00 to Saturday 00:00; monthly: each calendar month. Local to `timezone`."""

TIE_RULE = (
    "Equal scores share a rank (1, 2, 2, 4); rows of equal score are listed by participant id; "
    "every qualified participant ranked 1 is a winner. Scores are compared rounded to 6 decimals."
)
"""How ties are ranked: stated once, served with every standings and result."""

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]
FIRST, LAST = datetime(1971, 1, 1), datetime(9998, 12, 1)
"""Period bounds stay where every month and week around them can be computed."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]


class ScoreTerm(BaseModel):
    """One KPI of the score and its weight: the score is the sum of weight * KPI value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kpi: KpiName
    weight: Finite = Field(default=1.0, description="Multiplies the KPI value (may be negative).")


class Minimum(BaseModel):
    """A quality floor: a participant is ranked only while `kpi` is at least `at_least` (a rate
    or average with no denominator yet, null, does not meet it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kpi: KpiName
    at_least: Finite


class Period(BaseModel):
    """When the competition counts, in local time of the competition's time zone.

    `start` and `end` are local wall-clock times to the minute (no offset). For `once` both are
    required. For a recurring kind, `start` (optional) is when it begins: periods are whole and
    the first is the one containing `start`; `end` (optional) stops it: no period begins at or
    after it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PeriodKind
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("start", "end")
    @classmethod
    def _local_minute(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            raise ValueError("a local time without offset (the competition's time zone applies)")
        if value.second or value.microsecond:
            raise ValueError("to the minute: seconds must be 0")
        if not FIRST <= value <= LAST:
            raise ValueError(f"must be within {FIRST:%Y-%m-%d} .. {LAST:%Y-%m-%d}")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Period:
        if self.kind == "once" and (self.start is None or self.end is None):
            raise ValueError("a one-off period needs start and end")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Participants(BaseModel):
    """Who competes. `reps`: each rep named in `rep_ids` and each rep with calls of a team in
    `team_ids` (whole teams, rep against rep); `teams`: the teams in `team_ids`, team against
    team, each scored from all its calls."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["reps", "teams"] = "reps"
    rep_ids: list[Id] = Field(default_factory=list, max_length=10_000)
    team_ids: list[Id] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _someone(self) -> Participants:
        if not self.rep_ids and not self.team_ids:
            raise ValueError("name at least one rep or team")
        if self.mode == "teams" and (self.rep_ids or not self.team_ids):
            raise ValueError("team against team names team_ids only")
        return self


class CompetitionIn(BaseModel):
    """A competition as an admin defines it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE, description="Any language.")
    description: str = Field(default="", max_length=4000, pattern=r"^[^\x00]*$")
    timezone: TimeZoneName | None = Field(
        default=None,
        description="IANA zone of the period; default: the first participant team's, else the "
        "service's.",
    )
    participants: Participants
    score: list[ScoreTerm] = Field(
        min_length=1, max_length=10, description="Score = Σ weight * KPI value over the period."
    )
    minimums: list[Minimum] = Field(default_factory=list, max_length=10)
    targets: dict[Id, Finite] = Field(
        default_factory=dict, description="An individual target score per participant id."
    )
    default_target: Finite | None = Field(
        default=None, description="The target of participants without their own."
    )
    period: Period
    announce: bool = Field(
        default=True,
        description="Announce start, lead changes, the last hour and winners on the teams' "
        "alert channels.",
    )
    lead_change_minutes: int = Field(
        default=15, ge=1, le=1440, description="At most one lead-change announcement this often."
    )


class Competition(CompetitionIn):
    """A stored competition."""

    id: int
    timezone: TimeZoneName  # resolved when stored
    created_at: AwareDatetime
    updated_at: AwareDatetime


class PeriodOut(BaseModel):
    """One period: its key (`2026-12-02`, `2026-W49`, `2026-12`, `once`) and bounds."""

    model_config = ConfigDict(frozen=True)

    key: str
    start: AwareDatetime
    end: AwareDatetime


class StandingRow(BaseModel):
    """One participant's place: rank (null when a minimum is not met), score and gaps."""

    model_config = ConfigDict(frozen=True)

    rank: int | None
    participant_id: str
    score: float
    qualified: bool
    kpis: dict[str, float | None] = Field(description="The KPIs of the score and the minimums.")
    gap_to_leader: float | None = Field(description="Leader's score minus this score.")
    target: float | None = None
    gap_to_target: float | None = Field(
        default=None, description="Target minus score (0 once met)."
    )
    progress: float | None = Field(default=None, description="score / target.")


class Standings(BaseModel):
    """A competition's standings over one period."""

    model_config = ConfigDict(frozen=True)

    competition_id: int
    name: str
    period: PeriodOut | None = Field(description="Null between periods (e.g. a weekend).")
    as_of: AwareDatetime
    tie_rule: str = TIE_RULE
    leaders: list[str] = Field(description="The participants ranked 1.")
    participants: int = Field(default=0, description="Rows in all (`rows` may be one page).")
    rows: list[StandingRow]


class Correction(BaseModel):
    """A change to a closed period's result by a late event, recorded rather than silent."""

    model_config = ConfigDict(frozen=True)

    revision: int
    corrected_at: AwareDatetime
    previous_winners: list[str]
    winners: list[str]
    changed: dict[str, list[float]] = Field(
        description="Participant id -> [previous score, new score] of those whose score moved."
    )


class Result(BaseModel):
    """The frozen standings of one ended period, its winners and any corrections."""

    model_config = ConfigDict(frozen=True)

    competition_id: int
    period: PeriodOut
    frozen_at: AwareDatetime
    revision: int = Field(description="1 when frozen, +1 per correction.")
    winners: list[str]
    tie_rule: str = TIE_RULE
    rows: list[StandingRow]
    corrections: list[Correction] = []


AnnouncementKind = Literal["start", "lead_change", "last_hour", "winners", "correction"]


class Announcement(BaseModel):
    """What a competition tells the teams' channels (the signed webhook's JSON body)."""

    model_config = ConfigDict(frozen=True)

    announcement_id: str = Field(description="Stable: receivers can drop duplicates by it.")
    kind: AnnouncementKind
    competition_id: int
    competition: str
    period: PeriodOut
    leaders: list[str]
    message_en: str
    message_zh: str
    at: AwareDatetime
