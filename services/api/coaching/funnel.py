"""The sales funnel from counter totals, and the lost dials by why they were lost.

Each stage counts as its KPI does (by the time the rule table lands each fact), so the funnel's
stages equal the scorecard's and the reports' numbers for the same period.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.coaching import FunnelStage, Loss
from services.api.coaching.scorecard import Totals, values_of

STAGES = ("dials", "connects", "conversations", "conversions")
LossKey = tuple[str, str]
DialOutcome = tuple[bool, str | None, str | None, int]


def _rate(num: float, den: float) -> float | None:
    return None if den == 0 else round(num / den, 6)


def _rates(totals: Totals) -> dict[str, float | None]:
    return {
        "dials": None,
        # the connect rate KPI: outbound connects per dial
        "connects": values_of(totals)["connect_rate"],
        "conversations": _rate(totals["conversations"], totals["connects"]),
        "conversions": _rate(totals["conversions"], totals["conversations"]),
    }


def stages(totals: Totals, team: Totals | None) -> list[FunnelStage]:
    """The four stages of `totals`, each next to the team's when given."""
    rates, team_rates = _rates(totals), _rates(team) if team is not None else None
    return [
        FunnelStage(
            stage=stage,
            count=int(totals[stage]),
            rate=rates[stage],
            team_count=None if team is None else int(team[stage]),
            team_rate=None if team_rates is None else team_rates[stage],
        )
        for stage in STAGES
    ]


def loss_counts(outcomes: Iterable[DialOutcome]) -> dict[LossKey, int]:
    """Dials that did not end in a sale: unanswered by end status (`open` while the call has not
    ended), answered by outcome code (`none` without one)."""
    out: dict[LossKey, int] = {}
    for connected, status, outcome, count in outcomes:
        if outcome == "sale":
            continue
        key = ("connected", outcome or "none") if connected else ("not_connected", status or "open")
        out[key] = out.get(key, 0) + count
    return out


def losses(mine: dict[LossKey, int], team: dict[LossKey, int] | None) -> list[Loss]:
    """The losses, most first, with the team's count of the same reason when given."""
    keys = set(mine) | (set(team) if team is not None else set())
    rows = [
        Loss(
            stage=stage,
            reason=reason,
            count=mine.get((stage, reason), 0),
            team_count=None if team is None else team.get((stage, reason), 0),
        )
        for stage, reason in keys
    ]
    return sorted(rows, key=lambda r: (-r.count, -(r.team_count or 0), r.stage, r.reason))
