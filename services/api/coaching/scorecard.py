"""Scorecards from per-rep counter totals: values, targets, team median, percentile, trend.

Pure: the service reads the totals (the same call facts the reports sum) and the roster; this
module only derives. Every value is `kpi_values` of the rep's counters, so a scorecard equals
the daily report summed over the period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.coaching import BelowTeam, KpiRanking, PeriodOut, RepScorecard, ScoreLine, TeamRep
from schemas.kpis import ADDITIVE, KPI_NAMES, KpiName, WindowName, kpi_values
from schemas.roster import Target
from services.api.coaching.findings import findings
from services.api.coaching.stats import Distribution

Totals = Mapping[str, Any]
ZERO: dict[str, Any] = dict.fromkeys(ADDITIVE, 0)


def values_of(totals: Totals | None) -> dict[str, Any]:
    """Every KPI of some counter totals (all zero when None)."""
    return kpi_values(**(dict(totals) if totals is not None else ZERO))


def sum_totals(parts: Iterable[Totals]) -> dict[str, Any]:
    """Counter totals of several subjects."""
    out = dict(ZERO)
    for part in parts:
        for name in ADDITIVE:
            out[name] += part[name]
    return out


@dataclass(frozen=True, slots=True)
class TeamPeriod:
    """What a team's scorecards are made of: its reps' totals now and before, targets, names."""

    members: list[str]
    current: Mapping[str, Totals]
    previous: Mapping[str, Totals]
    targets: Mapping[str, list[Target]]
    names: Mapping[str, str | None]
    window: WindowName


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return round(num / den, 6)


def _line(
    kpi: KpiName,
    value: float | None,
    previous: float | None,
    target: float | None,
    team: Distribution,
) -> ScoreLine:
    change = None if value is None or previous is None else round(value - previous, 6)
    return ScoreLine(
        kpi=kpi,
        value=value,
        previous=previous,
        change=change,
        change_ratio=_ratio(change, previous),
        target=target,
        progress=_ratio(value, target),
        team_median=team.median,
        percentile=team.percentile(value),
    )


class TeamScores:
    """The scorecards of a team's reps over one period (one pass over their totals)."""

    def __init__(self, data: TeamPeriod, period: PeriodOut, team_id: str | None) -> None:
        self.data, self.period, self.team_id = data, period, team_id
        self.json: bytes | None = None
        """The team view's JSON, once serialised (the service caches these scores)."""
        self.now = {rep: values_of(data.current.get(rep)) for rep in data.members}
        self.before = {rep: values_of(data.previous.get(rep)) for rep in data.members}
        self.team = {
            kpi: Distribution(self.now[rep][kpi] for rep in data.members) for kpi in KPI_NAMES
        }

    def scorecard(self, rep_id: str) -> RepScorecard:
        """One rep's scorecard (a rep outside the team is compared with it all the same)."""
        now = self.now.get(rep_id) or values_of(self.data.current.get(rep_id))
        before = self.before.get(rep_id) or values_of(self.data.previous.get(rep_id))
        targets = {
            t.kpi: t.value
            for t in self.data.targets.get(rep_id, [])
            if t.window == self.data.window
        }
        lines = {
            kpi: _line(kpi, now[kpi], before[kpi], targets.get(kpi), self.team[kpi])
            for kpi in KPI_NAMES
        }
        size = len(self.data.members)
        return RepScorecard(
            rep_id=rep_id,
            rep_name=self.data.names.get(rep_id),
            team_id=self.team_id,
            team_size=size,
            period=self.period,
            lines=list(lines.values()),
            findings=findings(lines, size),
        )

    def row(self, rep_id: str) -> TeamRep:
        """A rep's line in the team view: its values and the rules of its findings."""
        card = self.scorecard(rep_id)
        return TeamRep(
            rep_id=rep_id,
            rep_name=card.rep_name,
            values={line.kpi: line.value for line in card.lines},
            findings=[f.rule for f in card.findings],
        )

    def rankings(self) -> list[KpiRanking]:
        """Per KPI, the reps below the team median, furthest below first."""
        team_values = values_of(sum_totals(self.data.current.values()))
        out = []
        for kpi in KPI_NAMES:
            median = self.team[kpi].median
            below = []
            if median:
                for rep in self.data.members:
                    value = self.now[rep][kpi]
                    if value is not None and value < median:
                        gap = round(value / median - 1, 6)
                        below.append(
                            BelowTeam(
                                rep_id=rep, rep_name=self.data.names.get(rep), value=value, gap=gap
                            )
                        )
            below.sort(key=lambda b: (b.gap, b.rep_id))
            out.append(
                KpiRanking(kpi=kpi, team_median=median, team_value=team_values[kpi], below=below)
            )
        return out
