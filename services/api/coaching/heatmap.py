"""Best time to call: connect and conversion rate per local weekday x hour, sparse cells marked."""

from __future__ import annotations

from schemas.coaching import HeatCell
from services.api.coaching.scorecard import ZERO, values_of

Cells = dict[tuple[int, int], dict[str, int]]
"""Counters by local (ISO weekday, hour)."""


def cells(grid: Cells, min_dials: int) -> list[HeatCell]:
    """All 168 cells, Monday 00:00 first; rates by the KPI formulas over each cell's counters."""
    out = []
    for weekday in range(1, 8):
        for hour in range(24):
            counters = grid.get((weekday, hour), {})
            values = values_of(ZERO | counters)
            dials = int(counters.get("dials", 0))
            out.append(
                HeatCell(
                    weekday=weekday,
                    hour=hour,
                    dials=dials,
                    connects=int(counters.get("connects", 0)),
                    inbound_calls=int(counters.get("inbound_calls", 0)),
                    conversions=int(counters.get("conversions", 0)),
                    connect_rate=values["connect_rate"],
                    conversion_rate=values["conversion_rate"],
                    sparse=dials < min_dials,
                )
            )
    return out
