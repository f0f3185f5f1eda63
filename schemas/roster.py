"""Roster contract: teams, reps, targets on the compacted `callpulse.roster` topic."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.kpis import KpiName, WindowName


def _valid_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    # OSError: a tzdata folder such as "America" (IsADirectoryError) would escape validation
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


TimeZoneName = Annotated[str, AfterValidator(_valid_timezone)]
TargetKpi = KpiName


class Shift(BaseModel):
    """Working days (ISO weekday 1 = Monday) and local start/end time."""

    model_config = ConfigDict(frozen=True)

    days: list[Annotated[int, Field(ge=1, le=7)]] = [1, 2, 3, 4, 5]
    start: time = time(9, 0)
    end: time = time(18, 0)


class Team(BaseModel):
    """A team: its time zone defines its calendar windows."""

    model_config = ConfigDict(frozen=True)

    team_id: str
    name: str | None = None
    timezone: TimeZoneName = "UTC"
    shift: Shift = Shift()


class Rep(BaseModel):
    """A rep; `external_ids` maps a provider's agent id (e.g. {"aircall": "123"}) to this rep."""

    model_config = ConfigDict(frozen=True)

    rep_id: str
    name: str | None = None
    team_id: str | None = None
    external_ids: dict[str, str] = {}


class Target(BaseModel):
    """A goal for one KPI over one window: `at least` value (avg talk, calls, conversion...)."""

    model_config = ConfigDict(frozen=True)

    kpi: TargetKpi
    window: WindowName = "today"
    value: float = Field(gt=0)


class Targets(BaseModel):
    """Targets of a team (defaults for its reps) or of one rep (overrides by kpi and window)."""

    model_config = ConfigDict(frozen=True)

    subject: Literal["team", "rep"]
    subject_id: str
    targets: list[Target] = []


class AlertRule(BaseModel):
    """One alert rule (design §3.6); a rep's rule overrides the team's rule of the same id.

    - `threshold`: `kpi` over `window` is `below` (or `above`) `value`, once the window has at
      least `min_sample` dials + inbound calls (so nobody is flagged on their first call);
    - `pace`: during the shift, the rep's `today` count for `kpi` trails the pro-rata share of
      their target by more than `tolerance` (a fraction of the expectation);
    - `idle`: no call activity for `idle_minutes` during the shift;
    - `missed`: at shift end, the `today` target for `kpi` was not met.

    A firing alert resolves only once the value is back past the threshold by `hysteresis`
    (a fraction), and the same rule does not fire again for `cooldown_minutes`.
    """

    model_config = ConfigDict(frozen=True)

    rule_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    kind: Literal["threshold", "pace", "idle", "missed"]
    kpi: TargetKpi = "dials"
    window: WindowName = "today"
    op: Literal["below", "above"] = "below"
    value: float | None = Field(default=None, ge=0)
    min_sample: int = Field(default=0, ge=0)
    tolerance: float = Field(default=0.2, ge=0, le=1)
    idle_minutes: int = Field(default=15, ge=1, le=24 * 60)
    hysteresis: float = Field(default=0.05, ge=0, le=1)
    cooldown_minutes: int = Field(default=30, ge=0, le=7 * 24 * 60)


class AlertRules(BaseModel):
    """The alert rules of a team (defaults for its reps) or of one rep (overrides by rule_id)."""

    model_config = ConfigDict(frozen=True)

    subject: Literal["team", "rep"]
    subject_id: str
    rules: list[AlertRule] = []


class RosterRecord(BaseModel):
    """One record of the roster topic; `deleted` tombstones the key."""

    model_config = ConfigDict(frozen=True)

    team: Team | None = None
    rep: Rep | None = None
    targets: Targets | None = None
    alert_rules: AlertRules | None = None

    def key(self) -> str:
        """The compaction key of this record."""
        if self.team is not None:
            return f"team:{self.team.team_id}"
        if self.rep is not None:
            return f"rep:{self.rep.rep_id}"
        if self.targets is not None:
            return f"targets:{self.targets.subject}:{self.targets.subject_id}"
        if self.alert_rules is not None:
            return f"alert-rules:{self.alert_rules.subject}:{self.alert_rules.subject_id}"
        raise ValueError("empty roster record")
