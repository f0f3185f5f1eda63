"""Pure scoring: KPI values from counter totals (the KPI windows' formulas), weighted scores,
quality minimums, targets and ranking under the stated tie rule (`schemas.competitions.TIE_RULE`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.competitions import CompetitionIn, StandingRow
from schemas.kpis import ADDITIVE, kpi_values

Totals = Mapping[str, float]
"""A participant's counter totals over a period, in natural units (seconds, currency)."""

DIGITS = 6


def values(totals: Totals) -> dict[str, Any]:
    """Every KPI of some counter totals (a counter not given is 0)."""
    return kpi_values(**{name: totals.get(name, 0) for name in ADDITIVE})


def score(competition: CompetitionIn, kpis: Mapping[str, Any]) -> float:
    """Sum of weight * KPI value over the score's terms; a null rate or average adds 0."""
    total = sum(term.weight * float(kpis.get(term.kpi) or 0) for term in competition.score)
    return round(total, DIGITS) + 0.0  # + 0.0: no -0.0


def qualified(competition: CompetitionIn, kpis: Mapping[str, Any]) -> bool:
    """True when every minimum is met (a null value never meets one)."""
    for minimum in competition.minimums:
        value = kpis.get(minimum.kpi)
        if value is None or value < minimum.at_least:
            return False
    return True


def shown(competition: CompetitionIn) -> list[str]:
    """The KPIs a row shows: those of the score, then those of the minimums."""
    names = [t.kpi for t in competition.score] + [m.kpi for m in competition.minimums]
    return list(dict.fromkeys(names))


def _row(competition: CompetitionIn, pid: str, kpis: Mapping[str, Any]) -> dict[str, Any]:
    points, ok = score(competition, kpis), qualified(competition, kpis)
    target = competition.targets.get(pid, competition.default_target)
    return {
        "rank": None,
        "participant_id": pid,
        "score": points,
        "qualified": ok,
        "kpis": {name: kpis.get(name) for name in shown(competition)},
        "gap_to_leader": None,
        "target": target,
        "gap_to_target": None if target is None else round(max(0.0, target - points), DIGITS),
        "progress": None if not target else round(points / target, DIGITS),
    }


def rank(
    competition: CompetitionIn,
    totals: Mapping[str, Totals],
    always: Iterable[str] = (),
) -> list[StandingRow]:
    """Standings: qualified participants by score (ties share a rank: 1, 2, 2, 4; then by id),
    then the unqualified ones, unranked. `always` are participants listed even without facts.

    Rows are built without validation (`model_construct`: every value is computed here), so
    ranking 10,000 participants stays well under the time of a wallboard poll's budget."""
    ids = sorted(set(totals) | set(always))
    scored = [_row(competition, pid, values(totals.get(pid, {}))) for pid in ids]
    scored.sort(key=lambda r: (not r["qualified"], -r["score"], r["participant_id"]))
    leader = next((r["score"] for r in scored if r["qualified"]), None)
    rows: list[StandingRow] = []
    previous: float | None = None
    current = 0
    for position, row in enumerate(scored, start=1):
        if row["qualified"] and row["score"] != previous:
            current, previous = position, row["score"]
        row["rank"] = current if row["qualified"] else None
        row["gap_to_leader"] = (
            None if leader is None else round(leader - row["score"], DIGITS) + 0.0
        )
        rows.append(StandingRow.model_construct(**row))
    return rows


def leaders(rows: Iterable[StandingRow]) -> list[str]:
    """The participants ranked 1 (the winners, once a period is frozen)."""
    return [row.participant_id for row in rows if row.rank == 1]
