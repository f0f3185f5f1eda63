"""Additive counters kept per time bucket, and the KPIs derived from them.

Every counter is an integer so that adding and retracting contributions is exact: talk time is
kept in milliseconds and revenue in units of 1/10,000 of the currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import IntEnum
from typing import Any

from schemas.kpis import kpi_values

REVENUE_SCALE = 10_000
TALK_SCALE = 1_000


class C(IntEnum):
    """Positions of the counters in a bucket list."""

    DIALS = 0
    INBOUND = 1
    CONNECTS = 2
    TALK_MS = 3
    CONVERSATIONS = 4
    CONVERSIONS = 5
    REVENUE = 6
    CSAT_SUM = 7
    CSAT_RESPONSES = 8


WIDTH = len(C)
Counters = list[int]


def zero() -> Counters:
    """A fresh bucket."""
    return [0] * WIDTH


def total(buckets: Iterable[Counters]) -> Counters:
    """The sum of many buckets."""
    columns = [sum(column) for column in zip(*buckets, strict=True)]
    return columns or zero()


def revenue_units(amount: Decimal) -> int:
    """A decimal amount in counter units (1/10,000), rounded half-even."""
    return int((amount * REVENUE_SCALE).to_integral_value())


def talk_ms(seconds: float) -> int:
    """Talk seconds in counter units (ms)."""
    return round(seconds * TALK_SCALE)


def derive(c: Counters) -> dict[str, Any]:
    """The KPI values of one bucket of counters (formulas in `schemas.kpis.kpi_values`)."""
    return kpi_values(
        dials=c[C.DIALS],
        inbound_calls=c[C.INBOUND],
        connects=c[C.CONNECTS],
        talk_seconds=c[C.TALK_MS] / TALK_SCALE,
        conversations=c[C.CONVERSATIONS],
        conversions=c[C.CONVERSIONS],
        revenue=c[C.REVENUE] / REVENUE_SCALE,
        csat_sum=c[C.CSAT_SUM],
        csat_responses=c[C.CSAT_RESPONSES],
    )
