"""The KPI rule table: each additive counter, the call facts that feed it, and when it lands.

This table is the one definition of what a call counts for. Live numbers (stage 1's
`contribution`, summed into stage 2's buckets) and history (each call record carries its credit
as `facts`, which the reports sum per day and hour) are both derived from it; the reference fold
in `reference.py` is written independently and a property test holds all three to each other.

Every counter is an integer so that adding and retracting credit is exact: talk time is kept in
milliseconds and revenue in units of 1/10,000 of the currency (`scale`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from schemas.kpis import kpi_values

if TYPE_CHECKING:
    from services.aggregator.domain.calls import CallState, Rules

Lands = Literal["dial", "connect", "end", "outcome", "survey"]
"""The time of a call a counter's credit falls at (and so the window it counts in)."""


def first_seen(call: CallState) -> datetime | None:
    """The earliest known moment of the call: its start, else its answer, else its end (not an
    end the stale sweep made up: a call known only by an outcome or a survey dialled nothing)."""
    return call.started_at or call.answered_at or (None if call.stale_closed else call.ended_at)


def call_time(call: CallState, lands: Lands) -> datetime | None:
    """When a fact of the call lands: a dial at its first moment, a connect at the answer (else
    that first moment), talk and conversations at the end, a sale at its outcome, a survey at
    its time."""
    if lands == "dial":
        return first_seen(call)
    if lands == "connect":
        return call.answered_at or first_seen(call)
    if lands == "end":
        return None if call.stale_closed else call.ended_at
    if lands == "outcome":
        return call.outcome_at
    return call.csat_at


def talk_seconds(call: CallState) -> float:
    """Talk time: as the end event says, else answer to end; 0 while not ended."""
    if call.talk_seconds is not None:
        return call.talk_seconds
    if call.answered_at is not None and call.ended_at is not None:
        return max(0.0, (call.ended_at - call.answered_at).total_seconds())
    return 0.0


def _outbound(call: CallState) -> bool:
    return call.direction != "inbound"


def _sale(call: CallState) -> bool:
    return call.outcome == "sale"


@dataclass(frozen=True, slots=True)
class CounterRule:
    """One additive counter: its name (a field of `schemas.kpis.Kpis`), when a call's credit
    lands, and how much a call credits, in integer units (`scale` units per natural unit)."""

    name: str
    lands: Lands
    credit: Callable[[CallState, Rules], int]
    scale: int = 1


RULES: tuple[CounterRule, ...] = (
    CounterRule("dials", "dial", lambda c, r: int(_outbound(c))),
    CounterRule("inbound_calls", "connect", lambda c, r: int(c.connected and not _outbound(c))),
    CounterRule("connects", "connect", lambda c, r: int(c.connected)),
    CounterRule(
        "talk_seconds",
        "end",
        lambda c, r: round(talk_seconds(c) * 1000) if c.connected else 0,
        scale=1000,
    ),
    CounterRule(
        "conversations",
        "end",
        lambda c, r: int(c.connected and talk_seconds(c) >= r.conversation_min_seconds),
    ),
    CounterRule("conversions", "outcome", lambda c, r: int(_sale(c))),
    CounterRule(
        "revenue",
        "outcome",
        lambda c, r: int((c.amount * 10_000).to_integral_value()) if _sale(c) and c.amount else 0,
        scale=10_000,
    ),
    CounterRule("csat_sum", "survey", lambda c, r: c.csat or 0),
    CounterRule("csat_responses", "survey", lambda c, r: int(c.csat is not None)),
)
"""Every counter, in bucket order. Rates and averages derive from these (`kpi_values`)."""

INDEX: dict[str, int] = {rule.name: i for i, rule in enumerate(RULES)}
"""A counter's position in a bucket."""
WIDTH = len(RULES)
DIALS, INBOUND, CONNECTS = INDEX["dials"], INDEX["inbound_calls"], INDEX["connects"]
Counters = list[int]
Atom = tuple[int, datetime, int]
"""(counter index, time the credit lands at, amount in the counter's units)."""


def credit(call: CallState, rules: Rules) -> tuple[Atom, ...]:
    """The atoms a call credits to its rep under the rule table (empty while the rep is unknown)."""
    if call.rep_id is None:
        return ()
    atoms: list[Atom] = []
    for index, rule in enumerate(RULES):
        at = call_time(call, rule.lands)
        if at is None:
            continue
        amount = rule.credit(call, rules)
        if amount:
            atoms.append((index, at, amount))
    return tuple(atoms)


def natural(index: int, amount: int) -> Decimal:
    """An amount in a counter's units as its natural value (seconds, currency), exactly."""
    return Decimal(amount) / RULES[index].scale


def zero() -> Counters:
    """A fresh bucket."""
    return [0] * WIDTH


def total(buckets: Iterable[Counters]) -> Counters:
    """The sum of many buckets."""
    columns = [sum(column) for column in zip(*buckets, strict=True)]
    return columns or zero()


def derive(c: Sequence[int]) -> dict[str, Any]:
    """The KPI values of one bucket of counters (formulas in `schemas.kpis.kpi_values`).

    Memoised: a rep's windows often sum to the same counters (all zero, or today = week)."""
    return dict(_derive(tuple(c)))


@lru_cache(maxsize=8192)
def _derive(c: tuple[int, ...]) -> tuple[tuple[str, Any], ...]:
    values: dict[str, Any] = {
        rule.name: c[i] / rule.scale if rule.scale != 1 else c[i] for i, rule in enumerate(RULES)
    }
    return tuple(kpi_values(**values).items())
